module github.com/ticketpulse/ticketpulse/services/notify

go 1.26.8

require (
	github.com/ticketpulse/ticketpulse/proto v0.0.0
	github.com/ticketpulse/ticketpulse/services/platform v0.0.0
)

replace (
	github.com/ticketpulse/ticketpulse/proto => ../../proto
	github.com/ticketpulse/ticketpulse/services/platform => ../platform
)
