package measure

import "context"

// bearer sends an API key in every gRPC call's metadata, as the services' gate reads it.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: the benchmark talks to a stack on loopback, without TLS.
func (bearer) RequireTransportSecurity() bool { return false }
