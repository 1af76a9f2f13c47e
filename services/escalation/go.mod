module github.com/ticketpulse/ticketpulse/services/escalation

go 1.26.8
