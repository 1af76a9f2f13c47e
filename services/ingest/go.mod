module github.com/ticketpulse/ticketpulse/services/ingest

go 1.26.8
