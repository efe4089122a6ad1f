package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KindOffset is the secret kind of committed consumer-group offsets:
// group/topic/partition → offset and metadata. They survive restarts.
const KindOffset = "kafka_offset"

// The classic consumer-group protocol (KIP-62 era): members join, the
// coordinator waits for every known member to rejoin (or its rebalance
// timeout), picks a leader which computes the assignment client-side, and
// hands each member its share at SyncGroup. Heartbeats tell members of a
// pending rebalance; members that stop heartbeating are removed.
type coordinator struct {
	s      *Server
	mu     sync.Mutex
	groups map[string]*group
}

type groupState int

const (
	stateEmpty groupState = iota
	statePreparing
	stateCompleting
	stateStable
)

type member struct {
	id         string
	protocols  []kmsg.JoinGroupRequestProtocol
	session    time.Duration
	rebalance  time.Duration
	lastSeen   time.Time
	join       chan *kmsg.JoinGroupResponse // set while a JoinGroup waits
	assignment []byte
	sync       chan *kmsg.SyncGroupResponse // set while a SyncGroup waits
}

type group struct {
	name       string
	state      groupState
	generation int32
	protocol   string
	ptype      string
	leader     string
	members    map[string]*member
	deadline   *time.Timer // ends the join phase
}

func newCoordinator(ctx context.Context, s *Server) *coordinator {
	c := &coordinator{s: s, groups: map[string]*group{}}
	go c.janitor(ctx)
	return c
}

// janitor removes members whose session expired, until ctx ends.
func (c *coordinator) janitor(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		now := time.Now()
		for _, g := range c.groups {
			for id, m := range g.members {
				if m.join == nil && m.sync == nil && now.Sub(m.lastSeen) > m.session {
					delete(g.members, id)
					c.rebalance(g)
				}
			}
		}
		c.mu.Unlock()
	}
}

func (c *coordinator) group(name string) *group {
	g := c.groups[name]
	if g == nil {
		g = &group{name: name, members: map[string]*member{}}
		c.groups[name] = g
	}
	return g
}

// rebalance starts a join phase (c.mu held): members learn of it from
// their heartbeats and rejoin.
func (c *coordinator) rebalance(g *group) {
	if len(g.members) == 0 {
		g.state, g.leader = stateEmpty, ""
		g.generation++
		return
	}
	if g.state == statePreparing {
		c.maybeComplete(g)
		return
	}
	g.state = statePreparing
	var longest time.Duration
	for _, m := range g.members {
		longest = max(longest, m.rebalance)
		if m.sync != nil { // a SyncGroup of the old generation: it must rejoin
			m.sync <- &kmsg.SyncGroupResponse{ErrorCode: errRebalance}
			m.sync = nil
		}
	}
	if g.deadline != nil {
		g.deadline.Stop()
	}
	g.deadline = time.AfterFunc(longest, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if g.state != statePreparing {
			return
		}
		for id, m := range g.members {
			if m.join == nil {
				delete(g.members, id) // did not rejoin in time
			}
		}
		c.complete(g)
	})
	c.maybeComplete(g)
}

// maybeComplete ends the join phase once every member has rejoined.
func (c *coordinator) maybeComplete(g *group) {
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	if g.deadline != nil {
		g.deadline.Stop()
	}
	c.complete(g)
}

// complete starts a new generation and answers the waiting joins.
func (c *coordinator) complete(g *group) {
	if len(g.members) == 0 {
		g.state, g.leader = stateEmpty, ""
		g.generation++
		return
	}
	g.generation++
	g.state = stateCompleting
	// The protocol: the first of the leader's that every member supports.
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		for id := range g.members {
			if g.leader == "" || id < g.leader {
				g.leader = id
			}
		}
	}
	g.protocol = ""
	for _, p := range g.members[g.leader].protocols {
		all := true
		for _, m := range g.members {
			found := false
			for _, q := range m.protocols {
				found = found || q.Name == p.Name
			}
			all = all && found
		}
		if all {
			g.protocol = p.Name
			break
		}
	}
	for _, m := range g.members {
		resp := &kmsg.JoinGroupResponse{Generation: g.generation, LeaderID: g.leader, MemberID: m.id}
		proto, ptype := g.protocol, g.ptype
		resp.Protocol, resp.ProtocolType = &proto, &ptype
		if g.protocol == "" {
			resp.ErrorCode = 23 // INCONSISTENT_GROUP_PROTOCOL
		}
		if m.id == g.leader {
			for _, o := range g.members {
				var meta []byte
				for _, p := range o.protocols {
					if p.Name == g.protocol {
						meta = p.Metadata
					}
				}
				resp.Members = append(resp.Members, kmsg.JoinGroupResponseMember{MemberID: o.id, ProtocolMetadata: meta})
			}
		}
		m.join <- resp
		m.join = nil
		m.lastSeen = time.Now()
	}
}

func (c *coordinator) handle(ctx context.Context, cn *conn, req kmsg.Request) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		return c.join(ctx, r)
	case *kmsg.SyncGroupRequest:
		return c.syncGroup(ctx, r)
	case *kmsg.HeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		c.mu.Lock()
		defer c.mu.Unlock()
		g := c.groups[r.Group]
		var m *member
		if g != nil {
			m = g.members[r.MemberID]
		}
		switch {
		case m == nil:
			resp.ErrorCode = errUnknownMember
		case g.state == statePreparing:
			m.lastSeen = time.Now()
			resp.ErrorCode = errRebalance
		case r.Generation != g.generation:
			resp.ErrorCode = errIllegalGeneration
		default:
			m.lastSeen = time.Now()
		}
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		ids := []string{r.MemberID}
		for _, m := range r.Members {
			ids = append(ids, m.MemberID)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		g := c.groups[r.Group]
		for _, id := range ids {
			if id == "" {
				continue
			}
			code := int16(errUnknownMember)
			if g != nil && g.members[id] != nil {
				delete(g.members, id)
				code = errNone
			}
			if r.Version >= 3 {
				resp.Members = append(resp.Members, kmsg.LeaveGroupResponseMember{MemberID: id, ErrorCode: code})
			}
		}
		if g != nil {
			c.rebalance(g)
		}
		return resp
	case *kmsg.OffsetCommitRequest:
		return c.commit(ctx, cn, r)
	case *kmsg.OffsetFetchRequest:
		return c.fetchOffsets(ctx, r)
	}
	return nil
}

func (c *coordinator) join(ctx context.Context, r *kmsg.JoinGroupRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	if r.Group == "" || len(r.Protocols) == 0 {
		resp.ErrorCode = 24 // INVALID_GROUP_ID
		return resp
	}
	c.mu.Lock()
	g := c.group(r.Group)
	if g.ptype != "" && len(g.members) > 0 && r.ProtocolType != g.ptype {
		c.mu.Unlock()
		resp.ErrorCode = 23
		return resp
	}
	m := g.members[r.MemberID]
	if m == nil {
		if r.MemberID != "" && len(g.members) > 0 && g.state != stateEmpty {
			c.mu.Unlock()
			resp.ErrorCode = errUnknownMember
			return resp
		}
		m = &member{id: r.MemberID}
		if m.id == "" {
			m.id = "mantle-" + mantle.NewID()
		}
		g.members[m.id] = m
	}
	g.ptype = r.ProtocolType
	m.protocols = r.Protocols
	m.session = time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	m.rebalance = time.Duration(max(r.RebalanceTimeoutMillis, r.SessionTimeoutMillis)) * time.Millisecond
	m.lastSeen = time.Now()
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.join = ch
	c.rebalance(g)
	c.mu.Unlock()
	resp.ErrorCode = errCoordinatorLoad // if the connection goes first
	return await(ctx, ch, r.Version, resp)
}

// await waits for the coordinator's answer to a blocked JoinGroup or
// SyncGroup, or answers gone when the connection ends first.
func await[T kmsg.Response](ctx context.Context, ch <-chan T, version int16, gone T) kmsg.Response {
	select {
	case out := <-ch:
		out.SetVersion(version)
		return out
	case <-ctx.Done():
		return gone
	}
}

func (c *coordinator) syncGroup(ctx context.Context, r *kmsg.SyncGroupRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	c.mu.Lock()
	g := c.groups[r.Group]
	var m *member
	if g != nil {
		m = g.members[r.MemberID]
	}
	switch {
	case m == nil:
		c.mu.Unlock()
		resp.ErrorCode = errUnknownMember
		return resp
	case g.state == statePreparing:
		c.mu.Unlock()
		resp.ErrorCode = errRebalance
		return resp
	case r.Generation != g.generation:
		c.mu.Unlock()
		resp.ErrorCode = errIllegalGeneration
		return resp
	}
	m.lastSeen = time.Now()
	proto, ptype := g.protocol, g.ptype
	if r.MemberID == g.leader && g.state == stateCompleting {
		for _, a := range r.GroupAssignment {
			if o := g.members[a.MemberID]; o != nil {
				o.assignment = a.MemberAssignment
			}
		}
		g.state = stateStable
		for _, o := range g.members {
			if o.sync != nil {
				o.sync <- &kmsg.SyncGroupResponse{MemberAssignment: o.assignment, Protocol: &proto, ProtocolType: &ptype}
				o.sync = nil
			}
		}
	}
	if g.state == stateStable {
		resp.MemberAssignment = m.assignment
		resp.Protocol, resp.ProtocolType = &proto, &ptype
		c.mu.Unlock()
		return resp
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	m.sync = ch
	c.mu.Unlock()
	resp.ErrorCode = errCoordinatorLoad // if the connection goes first
	return await(ctx, ch, r.Version, resp)
}

type committed struct {
	Offset   int64   `json:"offset"`
	Metadata *string `json:"metadata,omitempty"`
}

func offsetKey(group, topic string, partition int32) string {
	return fmt.Sprintf("%s/%s/%d", group, topic, partition)
}

func (c *coordinator) commit(ctx context.Context, cn *conn, r *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	c.mu.Lock()
	g := c.groups[r.Group]
	code := int16(errNone)
	if r.Generation >= 0 { // -1: a simple commit outside a group's generations
		switch {
		case g == nil || g.members[r.MemberID] == nil:
			code = errUnknownMember
		case g.state == statePreparing:
			code = errRebalance
		case r.Generation != g.generation:
			code = errIllegalGeneration
		}
	}
	c.mu.Unlock()
	if code == errNone {
		err := c.s.o.Engine.Transact(ctx, func(tx store.Tx) error {
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					raw, _ := json.Marshal(committed{Offset: p.Offset, Metadata: p.Metadata})
					if err := tx.PutSecret(KindOffset, offsetKey(r.Group, t.Topic, p.Partition), raw); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			code = errCoordinatorLoad
		}
	}
	for _, t := range r.Topics {
		rt := kmsg.OffsetCommitResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			pc := code
			if pc == errNone && !c.s.topicExists(t.Topic) {
				pc = errUnknownTopic
			}
			rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: p.Partition, ErrorCode: pc})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *coordinator) fetchOffsets(ctx context.Context, r *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	topics := r.Topics
	if topics == nil { // all the group's topics
		all, _ := c.s.o.Engine.Secrets(ctx, KindOffset)
		seen := map[string]bool{}
		for k := range all { // group/topic/partition
			rest, ok := strings.CutPrefix(k, r.Group+"/")
			if i := strings.LastIndexByte(rest, '/'); ok && i > 0 && !seen[rest[:i]] {
				seen[rest[:i]] = true
				topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: rest[:i], Partitions: []int32{0}})
			}
		}
	}
	for _, t := range topics {
		rt := kmsg.OffsetFetchResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.OffsetFetchResponseTopicPartition{Partition: p, Offset: -1, LeaderEpoch: -1}
			if raw, err := c.s.o.Engine.Secret(ctx, KindOffset, offsetKey(r.Group, t.Topic, p)); err == nil {
				var cm committed
				if json.Unmarshal(raw, &cm) == nil {
					rp.Offset, rp.Metadata = cm.Offset, cm.Metadata
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
