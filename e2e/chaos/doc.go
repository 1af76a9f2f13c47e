// Package chaos is the chaos suite: it runs the real service binaries (ingest, two kpi, two
// escalation, two notify) against real Redis and NATS servers, drives a fixed-rate load of ticket
// events through ingest's events API while keeping its own ledger of what was acknowledged, and
// at seeded random moments kills a service (kill -9, then a restart), kills a Redis master and
// restarts it on its data (on a cluster, after its replica took over), stops and restarts a NATS node, pauses a service past its ack wait, and fills the
// NATS store's disk. Once the load stops and the system settles it checks the system against the
// ledger: every acknowledged event is in TICKETS exactly once, the KPIs equal those the ledger
// implies, every due escalation was raised once, and every escalation change reached the webhook
// receiver in exactly one message or was dead-lettered. It prints a table of the faults and the
// time to recover from each.
//
// The servers are behind Topology; Local is one redis-server or a Redis Cluster (3 masters, 3
// replicas), and one or three in-process JetStream nodes (three form a cluster with R3 streams).
package chaos
