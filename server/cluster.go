package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/cluster/membership"
	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/pgstore"
)

// ClusterDefaultShards is the shard count of a new cluster when
// AUTHNZERVER_SHARDS is not set: the same on every node whatever its
// processors, and enough grains to spread over a few dozen nodes.
const ClusterDefaultShards = 32

// clusterState is what a node of a cluster holds besides the core.
type clusterState struct {
	members  *membership.Provider
	host     *shardHost
	stop     chan struct{}
	stopOnce sync.Once
}

// startCluster joins the cluster cfg names (docs/operations.md, "Running
// several nodes"): etcd's member list, the shard grains on this node, and
// their leases in the PostgreSQL store.
func (s *Server) startCluster(cfg *config.Config, secret string, opts actors.Options) (*actors.Core, error) {
	pg, ok := s.Store.(*pgstore.Store)
	if !ok {
		return nil, errors.New("cluster mode needs the PostgreSQL store")
	}
	members, err := membership.New(membership.Config{
		Endpoints: cfg.ClusterEndpoints(), ClusterName: cfg.ClusterName, Logger: s.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = members.Check(ctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	host, portText, _ := net.SplitHostPort(cfg.NodeAddr) // checked by config
	port, _ := strconv.Atoi(portText)
	s.cluster = clusterState{members: members, stop: make(chan struct{})}
	s.cluster.host = newShardHost(pg, persist.WriterOptions{Async: cfg.Durability == "async"}, s.Log)
	core, err := actors.StartCluster(s.system, actors.ClusterConfig{
		Name:      cfg.ClusterName,
		Provider:  members,
		Host:      host,
		Port:      port,
		Advertise: cfg.NodeAddr,
		Shards:    s.cluster.host,
		Key:       actors.DeriveClusterKey([]byte(secret)),
		UserIDs:   pg.ReserveUserIDs,
		Excluded:  func() bool { return !members.Confirmed() },
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	s.Log.Info("cluster: joined", "cluster", cfg.ClusterName, "node", cfg.NodeAddr, "shards", opts.Shards)
	go s.watchMembership()
	return core, nil
}

// watchMembership ends serving when the other nodes expelled this one (it
// was cut from etcd, or paused, longer than the membership TTL): protoactor
// never takes a member id back, so only a restart, with a new id, rejoins.
// Its supervisor (systemd, Kubernetes) restarts it.
func (s *Server) watchMembership() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.cluster.stop:
			return
		case <-t.C:
		}
		if err := s.cluster.members.GetHealthStatus(); errors.Is(err, membership.ErrExpelled) {
			s.Log.Error("cluster: the other nodes expelled this one; it stops so that a restart rejoins with a new identity", "err", err)
			select {
			case s.serveErr <- fmt.Errorf("server: expelled from the cluster: %w", err):
			default:
			}
			return
		}
	}
}

// closeCluster stops the lease renewals once the core has left the
// cluster (its grains released their shards).
func (s *Server) closeCluster() {
	if s.cluster.stop != nil {
		s.cluster.stopOnce.Do(func() { close(s.cluster.stop) })
	}
	if s.cluster.host != nil {
		s.cluster.host.close()
	}
}
