// Package tlsconf serves TLS from a certificate file and a key file, and optionally requires
// client certificates signed by a CA file (mTLS). The files are read again when they change, so
// a renewed certificate is served without a restart; a bad replacement is logged and the pair in
// force keeps serving.
package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckEvery is how often, at most, the files are read again to see whether they changed.
// The check runs on a handshake, so an idle server reads nothing.
const DefaultCheckEvery = 2 * time.Second

// maxFileBytes bounds what is read of each file: a certificate chain or a CA bundle is a few
// kilobytes, and a path pointing at something huge must not exhaust memory on every check.
const maxFileBytes = 1 << 20

// Files name what a server serves: a PEM certificate (chain) and its PEM private key, and when
// ClientCA is set, the PEM CA certificates that must have signed a client's certificate.
type Files struct {
	Cert, Key, ClientCA string
}

// Role is which of the Files a FileError is about.
type Role string

// The roles of Files.
const (
	RoleCert     Role = "certificate"
	RoleKey      Role = "key"
	RoleClientCA Role = "client CA"
)

// FileError is a file that cannot serve: unreadable, not PEM, or a key that does not match the
// certificate (reported as the key's).
type FileError struct {
	Role Role
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s file %s: %v", e.Role, e.Path, e.Err) }

func (e *FileError) Unwrap() error { return e.Err }

// Reloader holds the TLS material in force and replaces it when the files change.
type Reloader struct {
	files Files
	every time.Duration
	log   *slog.Logger

	cur atomic.Pointer[material]
	// checked is when the files were last read, in Unix nanoseconds.
	checked atomic.Int64
	// mu lets one handshake at a time read the files; the others use what is in force.
	mu sync.Mutex
	// refused is the content last refused, so one bad replacement is logged once, not on every
	// check; lastErr likewise for an unreadable file.
	refused [3][sha256.Size]byte
	lastErr string
}

// material is one loaded set of files and the server configuration built from it.
type material struct {
	sums [3][sha256.Size]byte
	conf *tls.Config
	leaf *x509.Certificate
}

// New loads files and returns a Reloader that reads them again, at most every `every`, when a
// connection is being set up. An error is a *FileError naming the file at fault.
func New(files Files, every time.Duration, log *slog.Logger) (*Reloader, error) {
	if every <= 0 {
		every = DefaultCheckEvery
	}
	r := &Reloader{files: files, every: every, log: log}
	data, err := r.read()
	if err != nil {
		return nil, err
	}
	m, err := build(files, data)
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	r.checked.Store(time.Now().UnixNano())
	return r, nil
}

// Config is a server configuration that serves what is in force at each handshake, offering
// nextProtos for ALPN (e.g. "h2", "http/1.1" for HTTP; gRPC adds "h2" itself). Client
// certificates are required and verified when Files.ClientCA is set.
func (r *Reloader) Config(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := r.current().conf.Clone()
			c.NextProtos = nextProtos
			return c, nil
		},
	}
}

// Leaf is the certificate in force.
func (r *Reloader) Leaf() *x509.Certificate { return r.current().leaf }

// Mutual reports whether clients must present a certificate.
func (r *Reloader) Mutual() bool { return r.files.ClientCA != "" }

// current returns what is in force, first reading the files again when the last check is older
// than r.every and no other handshake is reading them.
func (r *Reloader) current() *material {
	m := r.cur.Load()
	if time.Since(time.Unix(0, r.checked.Load())) < r.every || !r.mu.TryLock() {
		return m
	}
	defer r.mu.Unlock()
	if time.Since(time.Unix(0, r.checked.Load())) < r.every {
		return r.cur.Load()
	}
	r.checked.Store(time.Now().UnixNano())
	r.reload()
	return r.cur.Load()
}

// reload replaces what is in force when the files changed and still make a valid set. Called
// with r.mu held.
func (r *Reloader) reload() {
	data, err := r.read()
	if err != nil {
		if msg := err.Error(); msg != r.lastErr {
			r.lastErr = msg
			r.log.Error("tls file unreadable; serving the certificate in force", "err", err)
		}
		return
	}
	r.lastErr = ""
	m := r.cur.Load()
	sums := checksums(data)
	if sums == m.sums || sums == r.refused {
		return
	}
	next, err := build(r.files, data)
	if err != nil {
		r.refused = sums
		r.log.Error("tls files invalid; serving the certificate in force", "err", err,
			"serial", m.leaf.SerialNumber.Text(16))
		return
	}
	r.cur.Store(next)
	r.log.Info("tls files reloaded", "serial", next.leaf.SerialNumber.Text(16),
		"not_after", next.leaf.NotAfter.UTC().Format(time.RFC3339), "client_ca", r.files.ClientCA != "")
}

// read returns the content of the cert, key and client CA files (the last nil when unset).
func (r *Reloader) read() ([3][]byte, error) {
	var out [3][]byte
	for i, f := range []struct {
		role Role
		path string
	}{{RoleCert, r.files.Cert}, {RoleKey, r.files.Key}, {RoleClientCA, r.files.ClientCA}} {
		if f.path == "" {
			continue
		}
		b, err := readFile(f.path)
		if err != nil {
			return out, &FileError{Role: f.role, Path: f.path, Err: err}
		}
		out[i] = b
	}
	return out, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err // the path is named by the FileError
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	return b, nil
}

func checksums(data [3][]byte) [3][sha256.Size]byte {
	var s [3][sha256.Size]byte
	for i, b := range data {
		if b != nil {
			s[i] = sha256.Sum256(b)
		}
	}
	return s
}

// build checks the files' content and makes the configuration serving it.
func build(files Files, data [3][]byte) (*material, error) {
	if !hasPEM(data[0], "CERTIFICATE") {
		return nil, &FileError{Role: RoleCert, Path: files.Cert, Err: errors.New("no PEM CERTIFICATE block in it")}
	}
	pair, err := tls.X509KeyPair(data[0], data[1])
	if err != nil {
		// The certificate parsed as PEM, so what failed is the key or its match with it. The
		// error text of crypto/tls never carries key material.
		return nil, &FileError{Role: RoleKey, Path: files.Key, Err: fmt.Errorf("with certificate %s: %w", files.Cert, err)}
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if files.ClientCA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data[2]) {
			return nil, &FileError{Role: RoleClientCA, Path: files.ClientCA, Err: errors.New("no PEM CA certificate in it")}
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return &material{sums: checksums(data), conf: conf, leaf: pair.Leaf}, nil
}

func hasPEM(b []byte, typ string) bool {
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return false
		}
		if blk.Type == typ {
			return true
		}
	}
	return false
}
