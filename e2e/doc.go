// Package e2e holds the end-to-end tests of the services together. They build the real service
// binaries (go build of services/<name>/cmd/<name>, once per test binary), run them against an
// embedded NATS server and a real redis-server, configure them only through their TICKETPULSE_*
// environment variables, and drive them only over HTTP and gRPC, as a deployment would. They import
// no service's Go packages, so a service can change its insides freely while its contract holds.
//
// testdata/conversations/<source>[-<shape>]/ are copies of each helpdesk adapter's recorded
// conversations (services/ingest/internal/adapter/<source>/testdata/conversation, and
// messaging-conversation, conversation-v1 or ticket-conversation for another shape of the same
// source's payloads): the deliveries in order, their headers, and expect.json, the KPIs the whole
// stack must make of them.
package e2e
