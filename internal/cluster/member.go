package cluster

import (
	"fmt"
	"net"
	"strconv"

	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/wire"
)

// Limits of a member's id and address. An id names a server in the Raft
// configuration and in the path DELETE /api/v1/cluster/members/{id}; the
// operator uses pod names (at most 55 characters), a hand-run server its
// host name by default.
const (
	maxMemberID   = 253 // a DNS name's length
	maxMemberHost = 253
)

// ValidateMemberID reports whether id may name a cluster member: 1 to 253
// characters of A-Z, a-z, 0-9, '.', '-' and '_', beginning and ending with
// a letter or digit. The error wraps errcode.ErrInvalidArgument and names
// the field "id".
func ValidateMemberID(id string) error {
	if why := idProblem(id); why != "" {
		return fmt.Errorf("id: %s: %w", why, errcode.ErrInvalidArgument)
	}
	return nil
}

// idProblem says what is wrong with id, or "" when nothing is.
func idProblem(id string) string {
	if id == "" {
		return "required"
	}
	if len(id) > maxMemberID {
		return fmt.Sprintf("%d bytes, at most %d are allowed", len(id), maxMemberID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && ((c != '.' && c != '-' && c != '_') || i == 0 || i == len(id)-1) {
			return fmt.Sprintf("%q: want letters, digits, '.', '-' and '_', beginning and ending with a letter or digit", truncateID(id))
		}
	}
	return ""
}

// ValidateMemberAddress reports whether addr is a peer address a member
// can be reached at: host:port with a host name (the characters of an id,
// at most 253) or an IP address, and a numeric port from 1 to 65535. The
// error wraps errcode.ErrInvalidArgument and names the field "address".
func ValidateMemberAddress(addr string) error {
	bad := func(why string) error {
		return fmt.Errorf("address: %q: %s: %w", truncateID(addr), why, errcode.ErrInvalidArgument)
	}
	if addr == "" {
		return fmt.Errorf("address: required: %w", errcode.ErrInvalidArgument)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bad("want host:port")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || port[0] < '1' || port[0] > '9' {
		return bad("the port must be a number from 1 to 65535")
	}
	if len(host) > maxMemberHost {
		return bad(fmt.Sprintf("the host has %d bytes, at most %d are allowed", len(host), maxMemberHost))
	}
	if net.ParseIP(host) == nil && idProblem(host) != "" {
		return bad("the host must be a DNS name or an IP address")
	}
	return nil
}

// validateMember checks a membership request's fields.
func validateMember(m wire.AddMemberRequest) error {
	if err := ValidateMemberID(m.ID); err != nil {
		return err
	}
	if err := ValidateMemberAddress(m.Address); err != nil {
		return err
	}
	switch m.Join {
	case "", wire.JoinEmpty, wire.JoinKept:
	default:
		return fmt.Errorf("join: %q: want %q or %q: %w", truncateID(m.Join), wire.JoinEmpty, wire.JoinKept, errcode.ErrInvalidArgument)
	}
	return nil
}

// truncateID shortens a rejected value for an error message.
func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
