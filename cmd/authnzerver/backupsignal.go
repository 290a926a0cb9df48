package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/authnzerver/authnzerver/server"
)

// watchBackupSignal makes the running server write a backup under
// AUTHNZERVER_BACKUPDIR on each SIGUSR1 (systemctl kill -s USR1
// authnzerver). A signal rather than an HTTP endpoint: only the server's
// own user or root can send it, and it needs no listener or credentials.
// The returned func stops watching.
func watchBackupSignal(srv *server.Server, stderr io.Writer) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	done := make(chan struct{})
	go backupOnSignal(srv, sig, done, stderr)
	return func() {
		signal.Stop(sig)
		close(done)
	}
}

// backupOnSignal takes a backup for each value received on sig until done
// is closed. The result also goes to the server's log.
func backupOnSignal(srv *server.Server, sig <-chan os.Signal, done <-chan struct{}, stderr io.Writer) {
	for {
		select {
		case <-done:
			return
		case <-sig:
			path, err := srv.BackupNow()
			if err != nil {
				srv.Log.Error("backup on SIGUSR1 failed", "err", err)
				fmt.Fprintln(stderr, "authnzerver: backup:", err)
				continue
			}
			fmt.Fprintln(stderr, "authnzerver: backup written to", path)
		}
	}
}
