// Package config loads authnzerver's configuration from the environment, an
// envfile and the command line, with the precedence of docs/operations.md,
// "Configuration": environment variable (or envfile) over command-line option
// over default.
//
// It imports nothing of ours and does no I/O beyond reading the envfile and
// the files that "value or path to a file" items name.
package config

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the server's configuration. Field comments name the variable.
type Config struct {
	AllowedHosts   string        // AUTHNZERVER_ALLOWEDHOSTS, ";"-separated
	AuthDB         string        // AUTHNZERVER_AUTHDB: the store: a pebble data directory, or a postgres:// URL; default the data directory
	AuthDBPassFile string        // AUTHNZERVER_AUTHDBPASSFILE: file holding the PostgreSQL password
	DataDir        string        // AUTHNZERVER_DATADIR: local files (generated key and salt, admin credentials); default AUTHNZERVER_AUTHDB when that is a path, else ./data
	BaseDir        string        // AUTHNZERVER_BASEDIR: where the admin credentials file goes
	DebugMode      int           // AUTHNZERVER_DEBUGMODE
	Listen         string        // AUTHNZERVER_LISTEN
	Permissions    string        // AUTHNZERVER_PERMISSIONS: model file; "" = built-in
	Port           int           // PORT, then AUTHNZERVER_PORT
	Secret         string        // AUTHNZERVER_SECRET: key list (value or file); "" = generated
	PIISalt        string        // AUTHNZERVER_PIISALT (value or file); "" = generated
	SessionExpiry  int           // AUTHNZERVER_SESSIONEXPIRY: days expired sessions are kept
	UserLockTries  int           // AUTHNZERVER_USERLOCKTRIES
	UserLockTime   int           // AUTHNZERVER_USERLOCKTIME: seconds
	PassPolicy     string        // AUTHNZERVER_PASSPOLICY
	RateLimits     string        // AUTHNZERVER_RATELIMITS; "none" turns them off
	Workers        int           // AUTHNZERVER_WORKERS: Argon2 workers; 0 = CPUs
	EmailServer    string        // AUTHNZERVER_EMAILSERVER
	EmailPort      int           // AUTHNZERVER_EMAILPORT
	EmailUser      string        // AUTHNZERVER_EMAILUSER
	EmailPass      string        // AUTHNZERVER_EMAILPASS
	EmailSender    string        // AUTHNZERVER_EMAILSENDER
	EmailTLS       string        // AUTHNZERVER_EMAILTLS: starttls (required, but optional to a loopback relay) | required | none | opportunistic
	EmailCAFile    string        // AUTHNZERVER_EMAILCAFILE: PEM CAs that sign the SMTP server's certificate
	TLSCertFile    string        // AUTHNZERVER_TLSCERTFILE
	TLSCertKey     string        // AUTHNZERVER_TLSCERTKEY
	TokenMaxAge    time.Duration // AUTHNZERVER_TOKENMAXAGE: seconds; 0 = any age
	MaxBodyBytes   int           // AUTHNZERVER_MAXBODYBYTES
	Shards         int           // AUTHNZERVER_SHARDS; 0 = 4×CPUs
	Durability     string        // AUTHNZERVER_DURABILITY: sync | async
	HashQueue      int           // AUTHNZERVER_HASHQUEUE: waiting hashes; 0 = 4×workers
	Argon2         string        // AUTHNZERVER_ARGON2: "t=3,m=65536,p=4"
	HashIsolation  string        // AUTHNZERVER_HASHISOLATION: process | off
	HashNice       int           // AUTHNZERVER_HASHNICE: 0..19, the hash worker's nice below the server
	DisposableList string        // AUTHNZERVER_DISPOSABLEDOMAINS: extra list file
	CommonPassList string        // AUTHNZERVER_COMMONPASSWORDS: extra list file
	MetricsAddr    string        // AUTHNZERVER_METRICSADDR; "" = off
	BackupDir      string        // AUTHNZERVER_BACKUPDIR: where SIGUSR1 writes checkpoints; "" = off
	LogFormat      string        // AUTHNZERVER_LOGFORMAT: text | json
	LogLevel       string        // AUTHNZERVER_LOGLEVEL: debug | info | warn | error
	MaxConns       int           // AUTHNZERVER_MAXCONNS
	MaxConnsPerIP  int           // AUTHNZERVER_MAXCONNSPERIP; negative: no bound
	MaxExtraInfo   int           // AUTHNZERVER_MAXEXTRAINFOBYTES: largest extra_info_json of a session
	ReadTimeout    time.Duration // AUTHNZERVER_READTIMEOUT: seconds or a Go duration
	WriteTimeout   time.Duration // AUTHNZERVER_WRITETIMEOUT: seconds or a Go duration
	MaxShardQueue  int           // AUTHNZERVER_MAXSHARDQUEUE; negative: no bound
	ServerFQDN     string        // AUTHNZERVER_FQDN; "" = the host name
	MaxSessions    int           // AUTHNZERVER_MAXSESSIONSPERUSER; negative: no bound
	MaxAPIKeys     int           // AUTHNZERVER_MAXAPIKEYSPERUSER; negative: no bound
	WALDamage      string        // AUTHNZERVER_WALDAMAGE: refuse | skip
	DiskReserve    int           // AUTHNZERVER_DISKRESERVE: MiB kept free for the store; 0 = none
	SocialConfig   string        // AUTHNZERVER_SOCIALPROVIDERS: JSON file of social login providers; "" = none
	Cluster        string        // AUTHNZERVER_CLUSTER: comma-separated etcd endpoints; "" = a single node
	NodeAddr       string        // AUTHNZERVER_NODEADDR: host:port this node's cluster remote listens on and advertises
	ClusterName    string        // AUTHNZERVER_CLUSTERNAME

	// Command-line only.
	EnvFile string
}

type item struct {
	name, env, help, def string
	envAlt               string // checked first when set (PORT before AUTHNZERVER_PORT)
	envAlias, flagAlias  string // older names, checked after env and name
	set                  func(c *Config, v string) error
}

func str(p func(c *Config) *string) func(c *Config, v string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func integer(name string, p func(c *Config) *int) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("config: %s: not an integer: %q", name, v)
		}
		*p(c) = n
		return nil
	}
}

// duration parses a positive number of seconds or a Go duration ("500ms").
func duration(name string, p func(c *Config) *time.Duration) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		d, err := time.ParseDuration(v)
		if err != nil {
			n, nerr := strconv.ParseFloat(v, 64)
			if nerr != nil {
				return fmt.Errorf("config: %s: not seconds or a duration: %q", name, v)
			}
			d = time.Duration(n * float64(time.Second))
		}
		if d <= 0 {
			return fmt.Errorf("config: %s: must be positive: %q", name, v)
		}
		*p(c) = d
		return nil
	}
}

var items = []item{
	{name: "allowedhosts", env: "AUTHNZERVER_ALLOWEDHOSTS", def: "localhost;127.0.0.1", help: "';'-separated Host names allowed", set: str(func(c *Config) *string { return &c.AllowedHosts })},
	{name: "datadir", env: "AUTHNZERVER_DATADIR", def: "./data", help: "data directory: generated key and salt, admin credentials, and the pebble store unless --authdb names another store (default: --authdb when that is a directory)", set: str(func(c *Config) *string { return &c.DataDir })},
	{name: "authdb", env: "AUTHNZERVER_AUTHDB", def: "the data directory", help: "the store: a directory for the embedded pebble store, or a PostgreSQL URL (postgres://user@host:5432/db?sslmode=verify-full) for a shared one", set: str(func(c *Config) *string { return &c.AuthDB })},
	{name: "authdbpassfile", env: "AUTHNZERVER_AUTHDBPASSFILE", def: "", help: "file holding the PostgreSQL password (first line), so it need not be in the URL", set: str(func(c *Config) *string { return &c.AuthDBPassFile })},
	{name: "basedir", env: "AUTHNZERVER_BASEDIR", def: "", help: "directory for the admin credentials file (default: the data directory)", set: str(func(c *Config) *string { return &c.BaseDir })},
	{name: "debugmode", env: "AUTHNZERVER_DEBUGMODE", def: "0", help: "1 enables POST /echo", set: integer("debugmode", func(c *Config) *int { return &c.DebugMode })},
	{name: "listen", env: "AUTHNZERVER_LISTEN", def: "127.0.0.1", help: "bind address", set: str(func(c *Config) *string { return &c.Listen })},
	{name: "permissions", env: "AUTHNZERVER_PERMISSIONS", def: "", help: "permission model JSON file (default: built in)", set: str(func(c *Config) *string { return &c.Permissions })},
	{name: "port", env: "AUTHNZERVER_PORT", envAlt: "PORT", def: "13431", help: "TCP port", set: integer("port", func(c *Config) *int { return &c.Port })},
	{name: "secret", env: "AUTHNZERVER_SECRET", envAlias: "AUTHNZERVER_SECRETKEY", def: "", help: "Fernet key list, comma-separated (first encrypts), or a file holding it; empty: generate one in the data directory", set: str(func(c *Config) *string { return &c.Secret })},
	{name: "piisalt", env: "AUTHNZERVER_PIISALT", def: "", help: "salt for PII hashes in logs, or a file holding it; 'none' logs plain values; empty: generate", set: str(func(c *Config) *string { return &c.PIISalt })},
	{name: "sessionexpiry", env: "AUTHNZERVER_SESSIONEXPIRY", def: "30", help: "days an expired session is kept before it is purged", set: integer("sessionexpiry", func(c *Config) *int { return &c.SessionExpiry })},
	{name: "userlocktries", env: "AUTHNZERVER_USERLOCKTRIES", def: "10", help: "failed password checks before an account is locked", set: integer("userlocktries", func(c *Config) *int { return &c.UserLockTries })},
	{name: "userlocktime", env: "AUTHNZERVER_USERLOCKTIME", def: "3600", help: "seconds an automatic lock lasts", set: integer("userlocktime", func(c *Config) *int { return &c.UserLockTime })},
	{name: "passpolicy", env: "AUTHNZERVER_PASSPOLICY", def: "min_pass_length:12; max_unsafe_similarity:50; max_char_frequency:0.3; min_pwned_matches:25", help: "password policy", set: str(func(c *Config) *string { return &c.PassPolicy })},
	{name: "ratelimits", env: "AUTHNZERVER_RATELIMITS", def: "ipaddr:720; user:480; session:600; apikey:720; burst:150", help: "rate limits per minute; 'none' turns them off", set: str(func(c *Config) *string { return &c.RateLimits })},
	{name: "workers", env: "AUTHNZERVER_WORKERS", def: "0", help: "Argon2 hasher workers (0: number of CPUs)", set: integer("workers", func(c *Config) *int { return &c.Workers })},
	{name: "emailserver", env: "AUTHNZERVER_EMAILSERVER", def: "localhost", help: "SMTP host", set: str(func(c *Config) *string { return &c.EmailServer })},
	{name: "emailport", env: "AUTHNZERVER_EMAILPORT", def: "25", help: "SMTP port", set: integer("emailport", func(c *Config) *int { return &c.EmailPort })},
	{name: "emailuser", env: "AUTHNZERVER_EMAILUSER", def: "", help: "SMTP user name (empty: no authentication)", set: str(func(c *Config) *string { return &c.EmailUser })},
	{name: "emailpass", env: "AUTHNZERVER_EMAILPASS", def: "", help: "SMTP password", set: str(func(c *Config) *string { return &c.EmailPass })},
	{name: "emailsender", env: "AUTHNZERVER_EMAILSENDER", def: "Authnzerver <authnzerver@localhost>", help: "From address of mail", set: str(func(c *Config) *string { return &c.EmailSender })},
	{name: "emailtls", env: "AUTHNZERVER_EMAILTLS", def: "starttls", help: "starttls (required, except to a loopback relay: 127.0.0.0/8, ::1 or localhost, where it is used when offered), required (always), none, or opportunistic (when offered, to any relay)", set: str(func(c *Config) *string { return &c.EmailTLS })},
	{name: "emailcafile", env: "AUTHNZERVER_EMAILCAFILE", def: "", help: "PEM file of the CAs that sign the SMTP server's certificate (empty: the system's)", set: str(func(c *Config) *string { return &c.EmailCAFile })},
	{name: "tlscertfile", env: "AUTHNZERVER_TLSCERTFILE", def: "", help: "TLS certificate (PEM); TLS is on when both are set", set: str(func(c *Config) *string { return &c.TLSCertFile })},
	{name: "tlscertkey", env: "AUTHNZERVER_TLSCERTKEY", def: "", help: "TLS private key (PEM)", set: str(func(c *Config) *string { return &c.TLSCertKey })},
	{name: "tokenmaxage", env: "AUTHNZERVER_TOKENMAXAGE", def: "120", help: "seconds a request token stays valid (0: any age)", set: func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return fmt.Errorf("config: tokenmaxage: not a non-negative integer: %q", v)
		}
		c.TokenMaxAge = time.Duration(n) * time.Second
		return nil
	}},
	{name: "maxbodybytes", env: "AUTHNZERVER_MAXBODYBYTES", def: "1048576", help: "largest request body accepted", set: integer("maxbodybytes", func(c *Config) *int { return &c.MaxBodyBytes })},
	{name: "shards", env: "AUTHNZERVER_SHARDS", def: "0", help: "number of state shards (0: 4×CPUs; in cluster mode, 32 or the cluster's)", set: integer("shards", func(c *Config) *int { return &c.Shards })},
	{name: "cluster", env: "AUTHNZERVER_CLUSTER", def: "", help: "comma-separated etcd endpoints (host:port or http://host:port) of the cluster this node joins (empty: a single node)", set: str(func(c *Config) *string { return &c.Cluster })},
	{name: "nodeaddr", env: "AUTHNZERVER_NODEADDR", def: "", help: "host:port this node's cluster messages listen on and are reached at (cluster mode)", set: str(func(c *Config) *string { return &c.NodeAddr })},
	{name: "clustername", env: "AUTHNZERVER_CLUSTERNAME", def: "authnzerver", help: "name of the cluster (cluster mode): nodes of one cluster share it", set: str(func(c *Config) *string { return &c.ClusterName })},
	{name: "durability", env: "AUTHNZERVER_DURABILITY", def: "sync", help: "sync (answer after fsync) or async (bounded loss window on a crash)", set: str(func(c *Config) *string { return &c.Durability })},
	{name: "hashqueue", env: "AUTHNZERVER_HASHQUEUE", def: "0", help: "password hashes allowed to wait (0: 4×workers)", set: integer("hashqueue", func(c *Config) *int { return &c.HashQueue })},
	{name: "argon2", env: "AUTHNZERVER_ARGON2", def: "t=3,m=65536,p=4", help: "Argon2id parameters for new hashes", set: str(func(c *Config) *string { return &c.Argon2 })},
	{name: "hashisolation", env: "AUTHNZERVER_HASHISOLATION", def: "process", help: "process: compute Argon2 in a child process, so logins do not take the cores from session checks; off: in this process", set: str(func(c *Config) *string { return &c.HashIsolation })},
	{name: "hashnice", env: "AUTHNZERVER_HASHNICE", def: "0", help: "how far below the server's priority the hash worker process runs (0 to 19): 0 splits the CPU between logins and the front under load, 19 gives logins only what the front leaves", set: integer("hashnice", func(c *Config) *int { return &c.HashNice })},
	{name: "disposabledomains", env: "AUTHNZERVER_DISPOSABLEDOMAINS", def: "", help: "file of extra disposable email domains", set: str(func(c *Config) *string { return &c.DisposableList })},
	{name: "commonpasswords", env: "AUTHNZERVER_COMMONPASSWORDS", def: "", help: "file of extra common passwords", set: str(func(c *Config) *string { return &c.CommonPassList })},
	{name: "metricsaddr", env: "AUTHNZERVER_METRICSADDR", def: "", help: "listen address of the Prometheus /metrics endpoint (empty: off)", set: str(func(c *Config) *string { return &c.MetricsAddr })},
	{name: "backupdir", env: "AUTHNZERVER_BACKUPDIR", def: "", help: "directory where the running server writes a backup on SIGUSR1 (empty: off)", set: str(func(c *Config) *string { return &c.BackupDir })},
	{name: "logformat", env: "AUTHNZERVER_LOGFORMAT", def: "text", help: "text or json", set: str(func(c *Config) *string { return &c.LogFormat })},
	{name: "loglevel", env: "AUTHNZERVER_LOGLEVEL", def: "info", help: "debug, info, warn or error", set: str(func(c *Config) *string { return &c.LogLevel })},
	{name: "maxconns", env: "AUTHNZERVER_MAXCONNS", def: "10000", help: "concurrent connections", set: integer("maxconns", func(c *Config) *int { return &c.MaxConns })},
	{name: "maxconnsperip", env: "AUTHNZERVER_MAXCONNSPERIP", def: "1000", help: "concurrent connections from one client address; more are refused as they are accepted (negative: no bound)", set: integer("maxconnsperip", func(c *Config) *int { return &c.MaxConnsPerIP })},
	{name: "maxextrainfobytes", env: "AUTHNZERVER_MAXEXTRAINFOBYTES", def: "16384", help: "largest extra_info_json (JSON bytes) a session may hold", set: integer("maxextrainfobytes", func(c *Config) *int { return &c.MaxExtraInfo })},
	{name: "readtimeout", env: "AUTHNZERVER_READTIMEOUT", def: "10", help: "seconds (or a duration such as 500ms) a client may take to send a request; slower clients are disconnected", set: duration("readtimeout", func(c *Config) *time.Duration { return &c.ReadTimeout })},
	{name: "writetimeout", env: "AUTHNZERVER_WRITETIMEOUT", def: "10", help: "seconds (or a duration) a client may take to read an answer", set: duration("writetimeout", func(c *Config) *time.Duration { return &c.WriteTimeout })},
	{name: "maxshardqueue", env: "AUTHNZERVER_MAXSHARDQUEUE", def: "4096", help: "messages waiting for one shard beyond which requests are answered 503 (negative: no bound)", set: integer("maxshardqueue", func(c *Config) *int { return &c.MaxShardQueue })},
	{name: "maxsessionsperuser", env: "AUTHNZERVER_MAXSESSIONSPERUSER", def: "100", help: "live sessions one user may hold; a new one past it deletes the oldest (negative: no bound; the anonymous user has none)", set: integer("maxsessionsperuser", func(c *Config) *int { return &c.MaxSessions })},
	{name: "maxapikeysperuser", env: "AUTHNZERVER_MAXAPIKEYSPERUSER", def: "100", help: "live API keys of each kind (session-tied, no-session) one user may hold; a new one past it deletes the oldest of its kind (negative: no bound)", set: integer("maxapikeysperuser", func(c *Config) *int { return &c.MaxAPIKeys })},
	{name: "waldamage", env: "AUTHNZERVER_WALDAMAGE", def: "refuse", help: "a write-ahead log damaged before its end (not a tail torn by a crash): refuse to start, or skip: start without the commits after the damage (reported in the log; the damaged log is copied beside the store)", set: str(func(c *Config) *string { return &c.WALDamage })},
	{name: "diskreserve", env: "AUTHNZERVER_DISKRESERVE", def: "64", help: "MiB of disk the store holds in reserve and frees when the disk fills, so that it stays consistent while writes are answered 503 (0: none)", set: integer("diskreserve", func(c *Config) *int { return &c.DiskReserve })},
	{name: "socialproviders", env: "AUTHNZERVER_SOCIALPROVIDERS", def: "", help: "JSON file listing the social login providers (GitHub, Google, X, OpenID Connect), e.g. [{\"name\":\"github\",\"kind\":\"github\",\"client_id\":\"...\",\"client_secret_file\":\"gh-secret\",\"redirect_uris\":[\"https://app.example/auth/github\"]}, {\"name\":\"corp\",\"kind\":\"oidc\",\"issuer\":\"https://id.corp.example\",...}]; see docs/social.md (empty: none)", set: str(func(c *Config) *string { return &c.SocialConfig })},
	{name: "fqdn", env: "AUTHNZERVER_FQDN", def: "", help: "server name for the password similarity check (default: host name)", set: str(func(c *Config) *string { return &c.ServerFQDN })},
}

// Load reads the configuration from args (without the program name) and the
// environment given by getenv. Empty values fall back to the default.
func Load(args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("authnzerver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagVals := map[string]*string{}
	for _, it := range items {
		flagVals[it.name] = fs.String(it.name, "", fmt.Sprintf("%s (env %s; default %q)", it.help, it.env, it.def))
		if it.flagAlias != "" {
			flagVals[it.flagAlias] = fs.String(it.flagAlias, "", "same as --"+it.name)
		}
	}
	envFile := fs.String("envfile", "", "read the AUTHNZERVER_* variables from this file instead of the environment")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	if *envFile != "" {
		vals, err := readEnvFile(*envFile)
		if err != nil {
			return nil, err
		}
		getenv = func(k string) string { return vals[strings.ToUpper(k)] }
	}
	c := &Config{EnvFile: *envFile}
	for _, it := range items {
		v := ""
		if it.envAlt != "" {
			v = strings.TrimSpace(getenv(it.envAlt))
		}
		if v == "" {
			v = strings.TrimSpace(getenv(it.env))
		}
		if v == "" && it.envAlias != "" {
			v = strings.TrimSpace(getenv(it.envAlias))
		}
		if v == "" {
			v = strings.TrimSpace(*flagVals[it.name])
		}
		if v == "" && it.flagAlias != "" {
			v = strings.TrimSpace(*flagVals[it.flagAlias])
		}
		if v == "" && it.name != "datadir" && it.name != "authdb" { // resolved below
			v = it.def
		}
		if err := it.set(c, v); err != nil {
			return nil, err
		}
	}
	c.resolveStore()
	return c, c.validate()
}

// IsPostgresURL reports whether an AUTHNZERVER_AUTHDB value names a
// PostgreSQL database rather than a pebble data directory.
func IsPostgresURL(v string) bool {
	l := strings.ToLower(v)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Postgres reports whether the store is PostgreSQL.
func (c *Config) Postgres() bool { return IsPostgresURL(c.AuthDB) }

// resolveStore splits the data directory from the store (docs/operations.md,
// "State and durability"): AUTHNZERVER_AUTHDB alone, as a path, is the data
// directory (the reference's name for it); as a URL it selects PostgreSQL
// and the data directory stays AUTHNZERVER_DATADIR (./data by default);
// when both are set, AUTHNZERVER_AUTHDB chooses the store.
func (c *Config) resolveStore() {
	if c.DataDir == "" {
		c.DataDir = "./data"
		if c.AuthDB != "" && !IsPostgresURL(c.AuthDB) {
			c.DataDir = c.AuthDB
		}
	}
	if c.AuthDB == "" {
		c.AuthDB = c.DataDir
	}
}

func (c *Config) validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535: // 0 picks a free port
		return fmt.Errorf("config: port %d out of range", c.Port)
	case c.Durability != "sync" && c.Durability != "async":
		return fmt.Errorf("config: durability must be sync or async, not %q", c.Durability)
	case c.HashNice < 0 || c.HashNice > 19:
		return fmt.Errorf("config: hashnice must be 0 to 19, not %d", c.HashNice)
	case c.HashIsolation != "process" && c.HashIsolation != "off":
		return fmt.Errorf("config: hashisolation must be process or off, not %q", c.HashIsolation)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("config: logformat must be text or json, not %q", c.LogFormat)
	case (c.TLSCertFile == "") != (c.TLSCertKey == ""):
		return errors.New("config: set both tlscertfile and tlscertkey, or neither")
	case c.UserLockTries < 1, c.UserLockTime < 1:
		return errors.New("config: userlocktries and userlocktime must be positive")
	case c.SessionExpiry < 0:
		return errors.New("config: sessionexpiry must not be negative")
	case c.MaxExtraInfo < 1:
		return errors.New("config: maxextrainfobytes must be positive")
	case c.MaxSessions == 0, c.MaxAPIKeys == 0:
		return errors.New("config: maxsessionsperuser and maxapikeysperuser must not be 0 (negative: no bound)")
	case c.WALDamage != "refuse" && c.WALDamage != "skip":
		return fmt.Errorf("config: waldamage must be refuse or skip, not %q", c.WALDamage)
	case c.AuthDBPassFile != "" && !c.Postgres():
		return errors.New("config: authdbpassfile is for a PostgreSQL store; authdb is not a postgres:// URL")
	case c.DiskReserve < 0 || c.DiskReserve > 1<<20:
		return fmt.Errorf("config: diskreserve must be 0 to %d MiB, not %d", 1<<20, c.DiskReserve)
	}
	return c.validateCluster()
}

// validateCluster checks the items of cluster mode (docs/operations.md,
// "Running several nodes").
func (c *Config) validateCluster() error {
	if strings.TrimSpace(c.Cluster) == "" {
		if c.NodeAddr != "" {
			return errors.New("config: nodeaddr is for cluster mode; set cluster (AUTHNZERVER_CLUSTER) to the etcd endpoints too")
		}
		return nil
	}
	if !c.Postgres() {
		return errors.New("config: cluster mode (AUTHNZERVER_CLUSTER) needs the shared PostgreSQL store: set AUTHNZERVER_AUTHDB to a postgres:// URL")
	}
	if c.NodeAddr == "" {
		return errors.New("config: cluster mode needs AUTHNZERVER_NODEADDR (--nodeaddr), the host:port the other nodes reach this one at")
	}
	host, port, err := net.SplitHostPort(c.NodeAddr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		return fmt.Errorf("config: nodeaddr %q is not host:port", c.NodeAddr)
	}
	if host == "" || net.ParseIP(host).IsUnspecified() {
		return fmt.Errorf("config: nodeaddr %q: give the address the other nodes reach this one at, not a wildcard", c.NodeAddr)
	}
	if strings.TrimSpace(c.ClusterName) == "" {
		return errors.New("config: clustername must not be empty")
	}
	return nil
}

// ClusterEndpoints returns the etcd endpoints of AUTHNZERVER_CLUSTER.
func (c *Config) ClusterEndpoints() []string {
	var out []string
	for _, e := range strings.Split(c.Cluster, ",") {
		out = append(out, strings.TrimSpace(e))
	}
	return out
}

// Usage writes the list of items with their variables and defaults.
func Usage(w io.Writer) {
	for _, it := range items {
		fmt.Fprintf(w, "  --%-18s %s\n      env %s; default %q\n", it.name, it.help, it.env, it.def)
	}
	fmt.Fprintf(w, "  --%-18s %s\n", "envfile", "read the variables from this file (NAME=value lines) instead of the environment")
}

// readEnvFile reads NAME=value (or NAME: value) lines. Values are literal,
// as in the reference's configparser reading (quotes are not removed).
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: envfile: %w", err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("config: envfile %s line %d: want NAME=value", path, n)
		}
		vals[strings.ToUpper(strings.TrimSpace(line[:i]))] = strings.TrimSpace(line[i+1:])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config: envfile: %w", err)
	}
	return vals, nil
}

// ValueOrFile returns v, or the content of the file v names (trailing
// newlines stripped), as the reference does for secret and piisalt.
func ValueOrFile(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if st, err := os.Stat(v); err == nil && st.Mode().IsRegular() {
		b, err := os.ReadFile(v)
		if err != nil {
			return "", fmt.Errorf("config: read %s: %w", v, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return v, nil
}
