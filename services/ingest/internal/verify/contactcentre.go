package verify

// The contact-centre sources. None of them signs its notifications with a key of ours: each
// proves itself with a token it was told when the webhook was set up, in the URL (Five9), in a
// header of our choosing (Genesys Cloud) or in a header of the vendor's (RingCentral).
const (
	Five9       = "five9"
	Genesys     = "genesys"
	RingCentral = "ringcentral"
)

// Header names of the contact-centre schemes. GenesysSecretHeader is Ticketpulse's own: the
// Genesys Cloud Data Action that posts a trigger's event sends the headers it is configured
// with, and this is the one docs/contactcentres.md names.
const (
	GenesysSecretHeader         = "X-Ticketpulse-Secret"
	RingCentralVerificationHead = "Verification-Token"
	RingCentralValidationHead   = "Validation-Token"
)

// ViaHandshake is a RingCentral subscription handshake: a request that carries the
// Validation-Token to echo back and no notification, so nothing to prove.
const ViaHandshake Via = "handshake"

// checkContactCentre adds the problems of a contact-centre source's Config to add.
func (c *Config) checkContactCentre(add func(string)) {
	signing := len(c.Secrets) > 0
	if c.BasicAuth != nil {
		add("Basic auth does not apply to " + c.Source)
	}
	if c.Tolerance != 0 {
		add(c.Source + " sends no signed timestamp; a tolerance does not apply")
	}
	switch c.Source {
	case Five9:
		// Five9's connector posts to a URL it is given and adds nothing we choose: the URL is
		// the credential.
		if c.URLToken.IsZero() {
			add("five9 cannot sign; it needs a URL token")
		}
		if signing {
			add("five9 cannot sign; only a URL token applies")
		}
	case Genesys:
		if !signing {
			add("needs the shared secret sent in " + GenesysSecretHeader)
		}
		if !c.URLToken.IsZero() {
			add("genesys sends the shared secret in a header; a URL token does not apply")
		}
	case RingCentral:
		if !signing {
			add("needs the subscription's verification token")
		}
		if !c.URLToken.IsZero() {
			add("ringcentral sends its verification token in a header; a URL token does not apply")
		}
	}
}

// tokenIn reports whether presented is any of the configured secrets, in constant time, every
// secret compared.
func tokenIn(presented string, secrets []Secret) bool {
	ok := false
	for _, s := range secrets {
		if sameBytes(presented, s.bytes()) {
			ok = true
		}
	}
	return ok
}

// five9: the token query parameter of the connector's URL.
func five9(cfg *Config, d Delivery) (Result, *Rejection) {
	if !d.Query.Has(TokenParam) {
		return Result{}, reject(ReasonMissingCredentials, "five9 deliveries need the %s query parameter", TokenParam)
	}
	if !sameBytes(d.Query.Get(TokenParam), cfg.URLToken.bytes()) {
		return Result{}, reject(ReasonBadToken, "the %s query parameter is wrong", TokenParam)
	}
	return Result{Via: ViaToken}, nil
}

// genesys: the shared secret in X-Ticketpulse-Secret, any of the configured ones (rotation). A
// secret in the query string is refused, not ignored: it would end up in access logs.
func genesys(cfg *Config, d Delivery) (Result, *Rejection) {
	v := d.Header.Get(GenesysSecretHeader)
	if v == "" {
		return Result{}, reject(ReasonMissingCredentials, "no %s header", GenesysSecretHeader)
	}
	if !tokenIn(v, cfg.Secrets) {
		return Result{}, reject(ReasonBadToken, "the %s header is wrong", GenesysSecretHeader)
	}
	return Result{Via: ViaToken}, nil
}

// ringCentral: every notification carries Verification-Token, the verificationToken the
// subscription was created with. Creating the subscription first posts a request with a
// Validation-Token header and no body, which must be answered 200 with the same header: that
// request carries no notification (an empty body is all it may hold) and is accepted as a
// handshake, since RingCentral does not promise a Verification-Token on it.
func ringCentral(cfg *Config, d Delivery) (Result, *Rejection) {
	if d.Header.Get(RingCentralValidationHead) != "" && len(d.Body) == 0 {
		return Result{Via: ViaHandshake}, nil
	}
	v := d.Header.Get(RingCentralVerificationHead)
	if v == "" {
		return Result{}, reject(ReasonMissingCredentials, "no %s header", RingCentralVerificationHead)
	}
	if !tokenIn(v, cfg.Secrets) {
		return Result{}, reject(ReasonBadToken, "the %s header is wrong", RingCentralVerificationHead)
	}
	return Result{Via: ViaToken}, nil
}
