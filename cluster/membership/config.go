package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of [Config].
const (
	DefaultTTL         = 3 * time.Second
	DefaultDialTimeout = 5 * time.Second
	DefaultPrefix      = "authnzerver"
)

// Config configures a [Provider].
type Config struct {
	// Endpoints are etcd's client endpoints, "host:port" or
	// "http://host:port". Other schemes (https: no TLS is configured) and
	// empty entries are refused.
	Endpoints []string
	// ClusterName names the cluster in the keys. Empty: the protoactor
	// cluster's name (cluster.Config.Name); if both are set they must
	// agree.
	ClusterName string
	// TTL is the lease of a member's key: a member that stops renewing it
	// (crash, partition from etcd) leaves the others' lists within TTL.
	// Whole seconds (etcd's unit), at least 1 s; default 3 s.
	TTL time.Duration
	// DialTimeout bounds Check, the first registration and each attempt to
	// re-register; default 5 s.
	DialTimeout time.Duration
	// Prefix is the first key segment: keys are
	// /<Prefix>/<ClusterName>/<member id>. Default "authnzerver".
	Prefix string
	// Logger receives membership changes at info and etcd trouble at
	// warn; default slog.Default().
	Logger *slog.Logger
}

// normalize returns cfg with defaults filled in and the endpoints as
// host:port, or an error naming the first bad entry.
func (cfg Config) normalize() (Config, error) {
	if len(cfg.Endpoints) == 0 {
		return cfg, errors.New("membership: no etcd endpoint given")
	}
	eps := make([]string, 0, len(cfg.Endpoints))
	for i, e := range cfg.Endpoints {
		hp, err := normalizeEndpoint(e)
		if err != nil {
			return cfg, fmt.Errorf("membership: etcd endpoint %d (%q): %w", i+1, e, err)
		}
		eps = append(eps, hp)
	}
	cfg.Endpoints = eps
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second || cfg.TTL%time.Second != 0 {
		return cfg, fmt.Errorf("membership: TTL %v: etcd leases count whole seconds, at least 1 s", cfg.TTL)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.DialTimeout < 0 {
		return cfg, fmt.Errorf("membership: negative dial timeout %v", cfg.DialTimeout)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if cfg.Prefix == "" || strings.Contains(cfg.ClusterName, "/") {
		return cfg, fmt.Errorf("membership: prefix %q or cluster name %q: the prefix must not be only slashes and the name must not contain one", cfg.Prefix, cfg.ClusterName)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// normalizeEndpoint turns "host:port" or "http://host:port[/]" into
// host:port.
func normalizeEndpoint(e string) (string, error) {
	e = strings.TrimSpace(e)
	if e == "" {
		return "", errors.New("empty")
	}
	hostport := e
	if strings.Contains(e, "://") {
		u, err := url.Parse(e)
		if err != nil {
			return "", err
		}
		if u.Scheme != "http" {
			return "", fmt.Errorf("scheme %q not supported (only http:// or none; TLS is not configured)", u.Scheme)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", errors.New("only http://host:port is allowed (no user, path or query)")
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("want host:port: %w", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	if host == "" {
		return "", errors.New("no host")
	}
	return net.JoinHostPort(host, port), nil
}
