// Package server assembles a running authnzerver from its configuration:
// the store (pebble, or PostgreSQL through package pgstore), the shard
// actors, the hasher pool and the HTTP front, and creates the system users
// on first start.
//
// cmd/authnzerver calls it; so do the end-to-end tests, which start the real
// server on a loopback port.
package server

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/httpfront"
	"github.com/authnzerver/authnzerver/mail"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/perm"
	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/pgstore"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/social"
	"github.com/authnzerver/authnzerver/wire"
)

// Server is a running authnzerver.
type Server struct {
	Config *config.Config
	Codec  *wire.Codec
	Store  persist.Backend // *persist.Store (pebble) or *pgstore.Store
	Core   *actors.Core
	Hasher *passhash.Hasher
	// Accounts runs the core's flows on accounts (docs/design.md, "The
	// core's flows").
	Accounts *actors.Accounts
	Mailer   *mail.Mailer
	Front    *httpfront.Server
	Log      *slog.Logger
	// Addr is the address the server listens on, once Listen returned.
	Addr     net.Addr
	system   *actor.ActorSystem
	listener net.Listener
	serveErr chan error
	// FirstStart is true when this start created the system users.
	FirstStart bool
	// AdminCredentials is where the superuser's email and password were
	// written on first start ("" otherwise).
	AdminCredentials string
	ops              opsState     // ops.go: metrics listener, backups
	cluster          clusterState // cluster.go: cluster mode
}

// Options are the parts of a start that are not configuration.
type Options struct {
	Logger *slog.Logger // nil: built from the config (stderr)
	Stderr io.Writer    // nil: os.Stderr
	// Getenv reads AUTHNZERVER_ADMIN_EMAIL and AUTHNZERVER_ADMIN_PASSWORD
	// (nil: os.Getenv).
	Getenv func(string) string
	// Hasher overrides the Argon2 parameters (tests use cheap ones).
	HashParams *passhash.HashParams
	// Now overrides the clock of the core.
	Now func() time.Time
	// HashWorkerCommand starts an isolated hash worker process (a binary
	// that runs passhash.ServeHashWorker for the sub-command given), used when
	// AUTHNZERVER_HASHISOLATION is "process". Nil hashes in this process
	// (tests, which have no such binary).
	HashWorkerCommand []string
	// StoreFS overrides the filesystem of the pebble store (nil: the OS's).
	// Fault-injection tests pass a vfs/errorfs wrapper.
	StoreFS vfs.FS
	// Admin opens the store for an admin command: a PostgreSQL store must
	// already exist, and no server may run on it meanwhile (pebble's own
	// lock does this for a data directory).
	Admin bool
	// Social bounds the calls to the social login providers (tests use a
	// short timeout); zero fields mean the defaults of package social.
	Social social.Options
}

// Start opens the store, loads it, and starts the core and the front. It
// does not listen yet; see Listen.
func Start(cfg *config.Config, o Options) (*Server, error) {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	lg := o.Logger
	if lg == nil {
		lg = NewLogger(cfg, o.Stderr)
	}
	s := &Server{Config: cfg, Log: lg, serveErr: make(chan error, 1)}
	// A bad providers file stops the start before anything is opened
	// (docs/social.md, "Configuration").
	var providers *social.Providers
	if cfg.SocialConfig != "" {
		cfgs, err := social.LoadFile(cfg.SocialConfig)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		if providers, err = social.New(cfgs, o.Social); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		lg.Info("social logins", "providers", strings.Join(providers.Names(), ","))
	}
	dataDir := cfg.DataDir
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	}
	secret, err := keyOrGenerate(cfg.Secret, filepath.Join(dataDir, ".authnzerver-secret-key"), lg, "secret key")
	if err != nil {
		return nil, err
	}
	s.Codec, err = wire.NewCodec(wire.ParseKeyList(secret), cfg.TokenMaxAge)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	salt := cfg.PIISalt
	if !strings.EqualFold(salt, "none") {
		if salt, err = keyOrGenerate(cfg.PIISalt, filepath.Join(dataDir, ".authnzerver-salt"), lg, "PII salt"); err != nil {
			return nil, err
		}
	}
	model := perm.Default()
	if cfg.Permissions != "" {
		if model, err = perm.LoadFile(cfg.Permissions); err != nil {
			return nil, fmt.Errorf("server: permission model: %w", err)
		}
	}
	policy, err := passpolicy.ParsePolicy(cfg.PassPolicy)
	if err != nil {
		return nil, fmt.Errorf("server: password policy: %w", err)
	}
	if cfg.CommonPassList != "" {
		f, err := os.Open(cfg.CommonPassList)
		if err != nil {
			return nil, fmt.Errorf("server: common passwords: %w", err)
		}
		policy.Extra, err = passpolicy.LoadCommonList(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("server: common passwords: %w", err)
		}
	}
	disposable := passpolicy.BuiltinDisposable()
	if cfg.DisposableList != "" {
		f, err := os.Open(cfg.DisposableList)
		if err != nil {
			return nil, fmt.Errorf("server: disposable domains: %w", err)
		}
		extra, err := passpolicy.LoadDomainSet(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("server: disposable domains: %w", err)
		}
		disposable = disposable.Merge(extra)
	}
	params, err := parseArgon2(cfg.Argon2)
	if err != nil {
		return nil, err
	}
	if o.HashParams != nil {
		params = *o.HashParams
	}
	fqdn := cfg.ServerFQDN
	if fqdn == "" {
		fqdn, _ = os.Hostname()
	}

	shards := cfg.Shards
	if shards <= 0 {
		shards = actors.DefaultShards() // the store must know the count before the core starts
		if cfg.Cluster != "" && !o.Admin {
			// Every node must agree, whatever its processors.
			shards = ClusterDefaultShards
		}
	}
	if s.Store, err = openStore(cfg, o, lg, shards); err != nil {
		return nil, err
	}
	s.system = actors.NewActorSystem(lg)
	coreOpts := actors.Options{
		Shards: shards,
		// 0 days keeps no expired session (a zero Options field would
		// mean the 30-day default).
		Shard:  shard.Options{SessionRetention: max(time.Duration(cfg.SessionExpiry)*24*time.Hour, time.Nanosecond)},
		Logger: lg,
		Now:    o.Now,
	}
	if cfg.Cluster != "" && !o.Admin {
		s.Core, err = s.startCluster(cfg, wire.ParseKeyList(secret)[0], coreOpts)
	} else {
		s.Core, err = actors.Start(s.system, s.Store, s.Store.Writer(), coreOpts)
	}
	if err != nil {
		s.Store.Close()
		if s.cluster.host != nil {
			s.cluster.host.close()
		}
		return nil, storeError(err)
	}
	if pg, ok := s.Store.(*pgstore.Store); ok && (cfg.Cluster == "" || o.Admin) {
		// Another process took this one's shards (docs/operations.md,
		// "Fencing"): answer nothing more from memory that may be stale.
		core := s.Core
		pg.OnFenced(func(error) { core.Stop() })
	}
	hopts := passhash.HasherOptions{Workers: cfg.Workers, QueueLen: cfg.HashQueue, Params: params}
	if cfg.HashIsolation == "process" {
		hopts.Process, hopts.Nice = o.HashWorkerCommand, cfg.HashNice
	}
	s.Hasher = passhash.NewHasher(s.system, hopts)
	// One set of the core's flows, for the front and the bootstrap alike.
	s.Accounts = actors.NewAccounts(s.Core, s.Hasher, actors.AccountOptions{
		LockTries:  cfg.UserLockTries,
		LockTime:   time.Duration(cfg.UserLockTime) * time.Second,
		Policy:     policy,
		ServerFQDN: fqdn,
		PII:        func(v string) string { return httpfront.PIIHash(salt, v) },
		Logger:     lg,
	})
	var socialFlows *actors.Social
	if providers != nil {
		socialFlows = actors.NewSocial(s.Accounts, providers, actors.SocialOptions{MaxSessionsPerUser: cfg.MaxSessions})
	}
	if err := s.bootstrap(o.Getenv, dataDir); err != nil {
		s.Close()
		return nil, err
	}
	mailTLS, err := mail.ParseMailTLS(cfg.EmailTLS)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	var mailCAs *x509.CertPool
	if cfg.EmailCAFile != "" {
		if mailCAs, err = mail.LoadMailCAs(cfg.EmailCAFile); err != nil {
			s.Close()
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	s.Mailer = mail.NewMailer(s.system, mail.MailerOptions{})
	hosts := strings.Split(cfg.AllowedHosts, ";")
	s.Front, err = httpfront.New(httpfront.Options{
		AllowedHosts: hosts,
		MaxBodyBytes: cfg.MaxBodyBytes,
		MaxConns:     cfg.MaxConns,
		PIISalt:      salt,
		Logger:       lg,
		RateLimits:   cfg.RateLimits,
		Debug:        cfg.DebugMode == 1,
		Observer:     s.observer(),

		// Hostile clients and overload (docs/reliability.md).
		ReadTimeout:   cfg.ReadTimeout,
		WriteTimeout:  cfg.WriteTimeout,
		MaxShardQueue: cfg.MaxShardQueue,

		// One address cannot take every connection slot, and a session's
		// extra info is bounded.
		MaxConnsPerIP:     cfg.MaxConnsPerIP,
		MaxExtraInfoBytes: cfg.MaxExtraInfo,

		Users: httpfront.UserOptions{
			Permissions: model,
			Policy:      policy,
			Disposable:  disposable,
			ServerFQDN:  fqdn,

			MaxSessionsPerUser: cfg.MaxSessions,
			MaxAPIKeysPerUser:  cfg.MaxAPIKeys,
		},
		Mail: httpfront.MailOptions{
			SMTP: mail.SMTPSettings{Host: cfg.EmailServer, Port: cfg.EmailPort,
				User: cfg.EmailUser, Pass: cfg.EmailPass, TLS: mailTLS, RootCAs: mailCAs},
			Sender:   cfg.EmailSender,
			TokenKey: actors.DeriveCodeKey(wire.ParseKeyList(secret)[0]),
		},
	}, httpfront.Deps{
		Codec:    s.Codec,
		Core:     s.Core,
		Hasher:   s.Hasher,
		Mailer:   s.Mailer,
		Healthy:  s.Store.Healthy,
		Accounts: s.Accounts,
		Social:   socialFlows,
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	return s, nil
}

// Listen binds the configured address (port 0 picks a free one) and serves
// in the background.
func (s *Server) Listen() error {
	if err := s.listenMetrics(); err != nil {
		return err
	}
	addr := net.JoinHostPort(s.Config.Listen, strconv.Itoa(s.Config.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", addr, err)
	}
	s.listener = ln
	s.Addr = ln.Addr()
	go func() {
		if s.Config.TLSCertFile != "" {
			s.serveErr <- s.Front.ServeTLS(ln, s.Config.TLSCertFile, s.Config.TLSCertKey)
		} else {
			s.serveErr <- s.Front.Serve(ln)
		}
	}()
	return nil
}

// Done returns a channel that receives the error that stopped serving.
func (s *Server) Done() <-chan error { return s.serveErr }

// Close stops serving, waits for open requests, and closes the store after
// committing what is queued.
func (s *Server) Close() error {
	s.closeMetrics()
	if s.Front != nil && s.listener != nil {
		s.Front.Shutdown()
	}
	if s.Hasher != nil {
		s.Hasher.Stop()
	}
	if s.Mailer != nil {
		s.Mailer.Stop()
	}
	if s.Core != nil {
		s.Core.Stop()
	}
	s.closeCluster()
	var err error
	if s.Store != nil {
		err = s.Store.Close()
	}
	if s.system != nil && s.cluster.members == nil { // a cluster core shut its system down
		s.system.Shutdown()
	}
	return err
}

// openStore opens the store AUTHNZERVER_AUTHDB names: a PostgreSQL URL, or
// the pebble store in that directory's db/.
func openStore(cfg *config.Config, o Options, lg *slog.Logger, shards int) (persist.Backend, error) {
	wopts := persist.WriterOptions{Async: cfg.Durability == "async"}
	if cfg.Postgres() {
		st, err := pgstore.Open(pgstore.Options{
			URL: cfg.AuthDB, PasswordFile: cfg.AuthDBPassFile, Shards: shards, Writer: wopts, Logger: lg,
			Exclusive: o.Admin, NoCreate: o.Admin, Cluster: cfg.Cluster != "" && !o.Admin, ClusterVersion: int(actors.ClusterWireVersion),
		})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		return st, nil
	}
	st, err := persist.Open(filepath.Join(cfg.AuthDB, storeDir), persist.Options{
		Logger:        lg,
		FS:            o.StoreFS,
		Writer:        wopts,
		Reserve:       int64(cfg.DiskReserve) << 20,
		SkipWALDamage: cfg.WALDamage == "skip",
	})
	if err != nil {
		return nil, storeError(err)
	}
	return st, nil
}

// storeError says what to do about a store that cannot be opened or loaded
// because it is damaged; other errors it only prefixes.
func storeError(err error) error {
	var wal *persist.WALDamageError
	var file *persist.DamagedStoreError
	switch {
	case errors.As(err, &wal):
		return fmt.Errorf("server: %w. Restore the data directory from a backup (authnzerver restore), "+
			"or start with AUTHNZERVER_WALDAMAGE=skip (--waldamage skip) to go on without those commits", err)
	case errors.As(err, &file):
		return fmt.Errorf("server: %w (stop the server, then authnzerver restore BACKUP_DIR into an empty data directory)", err)
	}
	return fmt.Errorf("server: %w", err)
}

// keyOrGenerate returns the configured value (or the file it names); when
// it is empty, the key stored in path, or a new key written there (0400).
func keyOrGenerate(configured, path string, lg *slog.Logger, what string) (string, error) {
	v, err := config.ValueOrFile(configured)
	if err != nil {
		return "", err
	}
	if v != "" {
		return v, nil
	}
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	k, err := wire.GenerateKey()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(k+"\n"), 0o400); err != nil {
		return "", fmt.Errorf("server: write generated %s: %w", what, err)
	}
	lg.Warn("generated a new "+what, "file", path)
	return k, nil
}

func parseArgon2(s string) (passhash.HashParams, error) {
	p := passhash.DefaultHashParams()
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if !ok || err != nil || n == 0 {
			return p, fmt.Errorf("server: argon2 parameters: bad part %q", part)
		}
		switch strings.TrimSpace(k) {
		case "t":
			p.TimeCost = uint32(n)
		case "m":
			p.MemoryKiB = uint32(n)
		case "p":
			if n > 255 {
				return p, fmt.Errorf("server: argon2 parameters: p=%d too large", n)
			}
			p.Threads = uint8(n)
		default:
			return p, fmt.Errorf("server: argon2 parameters: unknown %q", k)
		}
	}
	return p, nil
}

// NewLogger builds the server's slog logger from the config.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	ho := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// bootstrap creates the system users (docs/protocol.md, "Users, emails and
// passwords") when the store has no superuser yet, and writes the admin
// credentials file (docs/operations.md, "Where things live").
func (s *Server) bootstrap(getenv func(string) string, dataDir string) error {
	adminEmail := getenv("AUTHNZERVER_ADMIN_EMAIL")
	if adminEmail == "" {
		name := "admin"
		if u, err := user.Current(); err == nil && u.Username != "" {
			name = u.Username
		}
		adminEmail = name + "@localhost"
	}
	adminEmail = passpolicy.NormalizeEmail(adminEmail)
	adminPass := getenv("AUTHNZERVER_ADMIN_PASSWORD")
	userGenerated := adminPass != ""
	if adminPass == "" {
		adminPass = randomString(16)
	}
	created, err := s.Accounts.Bootstrap(adminEmail, adminPass)
	// A node joining a cluster may find shards moving (its own arrival
	// moves some; a node restarted on its old address is not yet reachable
	// from every other node for a moment): what is busy is tried again for
	// a while, as a client would. Bootstrap is safe to repeat.
	for deadline := time.Now().Add(bootstrapPatience); s.cluster.members != nil && retryableAtStart(err) && time.Now().Before(deadline); {
		s.Log.Warn("cluster: the system users' shards are busy; trying again", "err", err)
		time.Sleep(500 * time.Millisecond)
		created, err = s.Accounts.Bootstrap(adminEmail, adminPass)
	}
	if err != nil {
		return fmt.Errorf("server: bootstrap: %w", err)
	}
	if !created {
		return nil
	}
	s.FirstStart = true
	credsDir := s.Config.BaseDir
	if credsDir == "" {
		credsDir = dataDir
	}
	path := filepath.Join(credsDir, ".authnzerver-admin-credentials")
	if _, err := os.Stat(path); err == nil {
		path = fmt.Sprintf("%s-%d", path, time.Now().Unix())
	}
	line := adminEmail + " " + adminPass + "\n"
	if userGenerated {
		line = adminEmail + " password-was-user-generated\n"
	}
	if err := os.WriteFile(path, []byte(line), 0o400); err != nil {
		return fmt.Errorf("server: write admin credentials: %w", err)
	}
	s.AdminCredentials = path
	return nil
}

// bootstrapPatience bounds how long a cluster node's start retries a
// bootstrap whose shards are busy.
const bootstrapPatience = time.Minute

func retryableAtStart(err error) bool {
	return errors.Is(err, actors.ErrBusy) || errors.Is(err, actors.ErrTimeout)
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
