package adapter

import "testing"

func TestSequence(t *testing.T) {
	tests := []struct {
		name string
		give string
		want uint64
	}{
		{"message id", "4711", 4711},
		{"largest exact JSON integer", "9007199254740991", 1<<53 - 1},
		{"leading zeros", "0042", 42},
		{"zero is none", "0", 0},
		{"beyond 2^53-1", "9007199254740992", 0},
		{"beyond uint64", "18446744073709551616", 0},
		{"negative", "-5", 0},
		{"signed", "+5", 0},
		{"not a number", "conv_123", 0},
		{"hex", "0x1f", 0},
		{"fraction", "1.5", 0},
		{"spaces", " 7", 0},
		{"empty", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sequence(tt.give); got != tt.want {
				t.Errorf("Sequence(%q) = %d, want %d", tt.give, got, tt.want)
			}
		})
	}
}
