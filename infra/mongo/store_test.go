package mongo

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestHostsNamesOnlyTheHosts(t *testing.T) {
	cases := []struct{ uri, want string }{
		{"mongodb://127.0.0.1:27017/", "127.0.0.1:27017"},
		{"mongodb://localhost", "localhost"},
		{"mongodb://user:s3cret@db.example:27017/cupcakes?authSource=admin", "db.example:27017"},
		{"mongodb://user:p%40ss@h1:1,h2:2,h3:3/?replicaSet=rs0", "h1:1,h2:2,h3:3"},
		{"mongodb+srv://user:s3cret@cluster0.example.net/?retryWrites=true", "cluster0.example.net"},
		{"mongodb://us@r:pa@ss@host:1/", "host:1"},
		{"mongodb://", "(no host in MONGODB_URI)"},
	}
	for _, tc := range cases {
		if got := Hosts(tc.uri); got != tc.want {
			t.Errorf("Hosts(%q) = %q; want %q", tc.uri, got, tc.want)
		}
	}
}

// TestAnUnreachableMongoDBIsReportedNamingTheHostNotThePassword pins what
// a start-up without MongoDB says: Open does not fail (the store keeps
// trying), and what is missing names the host, never the password.
func TestAnUnreachableMongoDBIsReportedNamingTheHostNotThePassword(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now

	s, err := Open("mongodb://cupcake:s3cretPassw0rd@"+addr+"/?authSource=admin", "cupcakes", Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err = s.WaitPrepared(ctx); err == nil {
		t.Fatal("prepared with nothing listening")
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with nothing listening")
	}
	msg := err.Error()
	if !strings.Contains(msg, "unreachable") {
		t.Errorf("error %q does not say MongoDB is unreachable", msg)
	}
	if !strings.Contains(msg, addr) {
		t.Errorf("error %q does not name the host %s", msg, addr)
	}
	if strings.Contains(msg, "s3cretPassw0rd") || strings.Contains(msg, "cupcake:") {
		t.Errorf("error %q shows the credentials", msg)
	}
	t.Log(msg)
}

func TestOpenRefusesABadURIWithoutShowingIt(t *testing.T) {
	_, err := Open("postgres://cupcake:s3cretPassw0rd@db:5432/", "cupcakes", Options{})
	if err == nil {
		t.Fatal("Open accepted a non-MongoDB URI")
	}
	if strings.Contains(err.Error(), "s3cretPassw0rd") {
		t.Errorf("error %q shows the password", err)
	}
	t.Log(err)
}
