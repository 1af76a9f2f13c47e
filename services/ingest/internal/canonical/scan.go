package canonical

import (
	"unicode/utf8"
)

// The helpers below walk JSON that encoding/json has already found well-formed, so they only find
// the extent of values and never report syntax errors; each looks at every byte once, whatever
// the nesting. Walking the bytes ourselves keeps object
// members in document order (stable problem lists) and lets duplicates be seen, which decoding
// into a map would hide.

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string literal starting at b[i] (a quote).
func stringEnd(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
		case '"':
			return i + 1
		default:
			i++
		}
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// members calls f with the raw key literal and raw value of each member of the object obj.
func members(obj []byte, f func(key, val []byte)) {
	i := skipWS(obj, 1)
	if i >= len(obj) || obj[i] == '}' {
		return
	}
	for i < len(obj) {
		ks := i
		ke := stringEnd(obj, i)
		i = skipWS(obj, ke) + 1 // the colon
		vs := skipWS(obj, i)
		ve := valueEnd(obj, vs)
		f(obj[ks:ke], obj[vs:ve])
		i = skipWS(obj, ve)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i = skipWS(obj, i+1)
	}
}

// eachElement calls f with the raw value of each element of the array arr, in order.
func eachElement(arr []byte, f func(val []byte)) {
	i := skipWS(arr, 1)
	if i >= len(arr) || arr[i] == ']' {
		return
	}
	for i < len(arr) {
		ve := valueEnd(arr, i)
		f(arr[i:ve])
		i = skipWS(arr, ve)
		if i >= len(arr) || arr[i] != ',' {
			return
		}
		i = skipWS(arr, i+1)
	}
}

// countElements returns the length of the array arr, or stop when it is at least that long.
func countElements(arr []byte, stop int) int {
	n := 0
	i := skipWS(arr, 1)
	if i >= len(arr) || arr[i] == ']' {
		return 0
	}
	for i < len(arr) && n < stop {
		n++
		i = skipWS(arr, valueEnd(arr, i))
		if i >= len(arr) || arr[i] != ',' {
			break
		}
		i = skipWS(arr, i+1)
	}
	return n
}

// unquote decodes the string literal raw (quotes included). ok is false when the literal holds
// invalid UTF-8 or an unpaired surrogate escape: encoding/json would silently turn either into
// U+FFFD, altering an id, so they are reported instead.
func unquote(raw []byte) (s string, ok bool) {
	body := raw[1 : len(raw)-1]
	simple := true
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(body), true
	}
	ok = utf8.Valid(body)
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch body[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(body[i+1 : i+5])
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+6 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
				if lo := hex4(body[i+3 : i+7]); lo >= 0xDC00 && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				ok = false
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, body[i])
		}
	}
	return string(out), ok
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
