package main

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBGPFlags(t *testing.T) {
	base := []string{"--port", "8080", "--backend", "127.0.0.1:8081"}
	peer := []string{"--bgp-peer", "10.99.161.1", "--bgp-asn", "65001", "--bgp-router-id", "10.99.161.11",
		"--bgp-announce", "10.99.175.1/32"}
	o, err := parseRunFlags(append(append(base, peer...), "--bgp-peer", "[fd00:99::1]:1179", "--bgp-peer-asn", "65000",
		"--bgp-announce", "fd00:99:af::1", "--bgp-community", "65001:160,65001:7", "--bgp-hold-time", "3s",
		"--bgp-next-hop6", "fd00:99:a1::11", "--bgp-graceful-restart", "10s"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.bgp
	if c == nil || c.ASN != 65001 || len(c.Peers) != 2 || c.Peers[1].Port != 1179 || c.Peers[0].ASN != 65000 ||
		len(c.Prefixes) != 2 || c.Prefixes[1] != netip.MustParsePrefix("fd00:99:af::1/128") ||
		len(c.Communities) != 2 || c.Communities[0] != 65001<<16|160 || c.HoldTime != 3*time.Second ||
		c.GracefulRestart != 10*time.Second || c.NextHop6 != netip.MustParseAddr("fd00:99:a1::11") {
		t.Errorf("config %+v", c)
	}
	if o, err := parseRunFlags(base, io.Discard); err != nil || o.bgp != nil {
		t.Errorf("without --bgp-peer: %v, %+v", err, o.bgp)
	}
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"--bgp-announce", "10.99.175.1/32"}, "--bgp-peer"},
		{[]string{"--bgp-peer", "10.99.161.1", "--bgp-router-id", "10.99.161.11", "--bgp-announce", "10.99.175.1/32"}, "--bgp-asn"},
		{[]string{"--bgp-peer", "10.99.161.1", "--bgp-asn", "65001", "--bgp-announce", "10.99.175.1/32"}, "--bgp-router-id"},
		{[]string{"--bgp-peer", "10.99.161.1", "--bgp-asn", "65001", "--bgp-router-id", "10.99.161.11"}, "--bgp-announce"},
		{append(append([]string{}, peer...), "--bgp-peer", "router"), "--bgp-peer"},
		{append(append([]string{}, peer...), "--bgp-announce", "10.99.175.0/8"), "--bgp-"},
		{append(append([]string{}, peer...), "--bgp-community", "65001"), "--bgp-community"},
		{append(append([]string{}, peer...), "--bgp-hold-time", "2s"), "--bgp-"},
		{append(append([]string{}, peer...), "--bgp-next-hop", "fd00::1"), "--bgp-"},
		{append(append([]string{}, peer...), "--bgp-peer-asn", "65001"), "--bgp-"},
	} {
		_, err := parseRunFlags(append(append([]string{}, base...), tt.args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("%q: %v, want an error naming %s", tt.args, err, tt.flag)
		}
	}
}
