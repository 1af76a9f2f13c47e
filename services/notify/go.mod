module github.com/ticketpulse/ticketpulse/services/notify

go 1.26.8
