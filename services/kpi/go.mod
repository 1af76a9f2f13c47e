module github.com/ticketpulse/ticketpulse/services/kpi

go 1.26.8
