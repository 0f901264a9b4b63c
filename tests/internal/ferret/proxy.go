package ferret

// The proxy in front of FerretDB: it copies MongoDB wire-protocol messages
// both ways, unchanged, and runs write commands one at a time. See the
// package doc for why.
//
// Every message starts with a 16-byte header of little-endian int32s:
// messageLength (header included), requestID, responseTo, opCode. A
// command is an OP_MSG (opCode 2013): flagBits (uint32), then sections; the
// kind-0 section is one BSON document whose first key is the command name.
// A reply carries the request's requestID in responseTo. A request with the
// moreToCome flag gets no reply. Exhaust replies (moreToCome in a reply)
// only stream reads (hello, getMore), which never take the lock.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

const (
	opCompressed = 2012
	opMsg        = 2013

	flagChecksumPresent = 1 << 0
	flagMoreToCome      = 1 << 1

	headerLen = 16
	maxMsgLen = 48_000_000 // MongoDB's maxMessageSizeBytes
)

// writeCommands are the commands FerretDB v1 runs as an unchecked
// read-modify-write (findandmodify is the old spelling it still accepts).
var writeCommands = map[string]bool{
	"insert": true, "update": true, "delete": true, "findAndModify": true, "findandmodify": true,
}

// writes is held by one write command at a time, from its request until its
// reply, by every proxy in the process.
var writes sync.Mutex

// proxy listens for MongoDB clients and connects each one to target.
type proxy struct {
	ln     net.Listener
	target string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startProxy(ctx context.Context, addr, target string, log *slog.Logger) (*proxy, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen on %s: %w", addr, err)
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &proxy{ln: ln, target: target, log: log, ctx: pctx, cancel: cancel}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			p.wg.Go(func() { p.serve(c) })
		}
	})
	return p, nil
}

// close stops listening, cuts every connection and waits for them to end.
func (p *proxy) close() {
	_ = p.ln.Close()
	p.cancel()
	p.wg.Wait()
}

// serve copies messages between one client and a connection of its own to
// FerretDB until either side closes.
func (p *proxy) serve(client net.Conn) {
	defer client.Close()
	server, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		p.log.ErrorContext(p.ctx, "proxy: connect to FerretDB", slog.String("addr", p.target), slog.Any("error", err))
		return
	}
	defer server.Close()
	stop := context.AfterFunc(p.ctx, func() { _, _ = client.Close(), server.Close() })
	defer stop()

	var h holder
	defer h.release(0, true)
	errs := make(chan error, 2)
	go func() { errs <- requests(client, server, &h) }()
	go func() { errs <- replies(server, client, &h) }()
	err = <-errs // the first direction to end says why
	_, _ = client.Close(), server.Close()
	<-errs
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && p.ctx.Err() == nil {
		p.log.WarnContext(p.ctx, "proxy: connection ended", slog.String("client", client.RemoteAddr().String()), slog.Any("error", err))
	}
}

// requests forwards client messages, taking the lock for write commands.
func requests(from, to net.Conn, h *holder) error {
	r := bufio.NewReader(from)
	for {
		msg, err := readMessage(r)
		if err != nil {
			return err
		}
		id, op := int32(binary.LittleEndian.Uint32(msg[4:])), binary.LittleEndian.Uint32(msg[12:])
		var write, noReply bool
		switch op {
		case opCompressed:
			// FerretDB v1 neither offers compression in its hello reply (so
			// drivers never compress) nor accepts it; and a compressed write
			// could not be told from a read here.
			return fmt.Errorf("request %d: OP_COMPRESSED is not supported: take compressors out of the URI", id)
		case opMsg:
			cmd, flags, err := command(msg[headerLen:])
			if err != nil {
				return fmt.Errorf("request %d: %w", id, err)
			}
			write, noReply = writeCommands[cmd], flags&flagMoreToCome != 0
		}
		if write {
			h.hold(id)
		}
		if _, err := to.Write(msg); err != nil {
			return fmt.Errorf("forward request %d: %w", id, err)
		}
		if write && noReply {
			h.release(id, false)
		}
	}
}

// replies forwards server messages, releasing the lock at a write's reply.
func replies(from, to net.Conn, h *holder) error {
	defer h.release(0, true) // no reply can come any more
	r := bufio.NewReader(from)
	for {
		msg, err := readMessage(r)
		if err != nil {
			return err
		}
		responseTo := int32(binary.LittleEndian.Uint32(msg[8:]))
		h.release(responseTo, false)
		if _, err := to.Write(msg); err != nil {
			return fmt.Errorf("forward reply to %d: %w", responseTo, err)
		}
	}
}

// readMessage reads one whole message, header included.
func readMessage(r io.Reader) ([]byte, error) {
	var header [headerLen]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(header[:])
	if n < headerLen || n > maxMsgLen {
		return nil, fmt.Errorf("message length %d out of range", n)
	}
	msg := make([]byte, n)
	copy(msg, header[:])
	if _, err := io.ReadFull(r, msg[headerLen:]); err != nil {
		return nil, fmt.Errorf("read message body: %w", err)
	}
	return msg, nil
}

// command returns the command name and flagBits of an OP_MSG body.
func command(body []byte) (string, uint32, error) {
	if len(body) < 5 {
		return "", 0, errors.New("OP_MSG too short")
	}
	flags := binary.LittleEndian.Uint32(body)
	sections := body[4:]
	if flags&flagChecksumPresent != 0 && len(sections) >= 4 {
		sections = sections[:len(sections)-4] // the CRC-32C at the end
	}
	for len(sections) >= 5 {
		kind, size := sections[0], int(binary.LittleEndian.Uint32(sections[1:]))
		if size < 5 || size > len(sections)-1 {
			return "", 0, fmt.Errorf("OP_MSG section of kind %d has size %d", kind, size)
		}
		switch kind {
		case 0:
			first, err := bson.Raw(sections[1 : 1+size]).IndexErr(0)
			if err != nil {
				return "", 0, fmt.Errorf("OP_MSG command document: %w", err)
			}
			name, err := first.KeyErr()
			return name, flags, err
		case 1: // a document sequence: int32 size, identifier, documents
			sections = sections[1+size:]
		default:
			return "", 0, fmt.Errorf("OP_MSG section of unknown kind %d", kind)
		}
	}
	return "", 0, errors.New("OP_MSG without a command document")
}

// holder is a connection's claim on the write lock: the request it holds
// it for, until the reply to it (or the end of the connection).
type holder struct {
	mu   sync.Mutex
	held bool
	id   int32
}

func (h *holder) hold(id int32) {
	writes.Lock()
	h.mu.Lock()
	h.held, h.id = true, id
	h.mu.Unlock()
}

// release releases the lock if it is held for request id, or for any
// request if anyID (when the connection ends).
func (h *holder) release(id int32, anyID bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held && (anyID || h.id == id) {
		h.held = false
		writes.Unlock()
	}
}
