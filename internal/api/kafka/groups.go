package kafka

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
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
	groups map[string]*group // by namespace and name (groupKey)
	// stored counts the groups with committed offsets per namespace, so
	// that a namespace's stored groups can be capped without a scan.
	stored map[string]map[string]bool
}

// Limits of the group coordinator, per identity namespace (see namespace).
const (
	maxGroups         = 100  // groups a namespace may have, live or with offsets
	maxMembers        = 1000 // members of one group
	maxOffsetMetadata = 4096 // bytes of a commit's metadata, as Kafka's offset.metadata.max.bytes
)

// Kafka error codes of the coordinator's refusals.
const (
	errOffsetMetadataTooLarge = 12
	errInvalidGroupID         = 24
	errGroupAuthorization     = 30
	errGroupMaxSize           = 81
)

// namespace is where a connection's groups live: each identity has its
// own, so a group name used by one key or user is another group for any
// other (and anonymous clients share one). A client cannot join, commit
// to or read the offsets of a group outside its namespace.
func namespace(id mantle.Identity) string {
	if id.Anonymous() {
		return "~anonymous"
	}
	return id.ID
}

func groupKey(ns, name string) string { return ns + "\x00" + name }

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
	ns, name   string
	state      groupState
	generation int32
	protocol   string
	ptype      string
	leader     string
	members    map[string]*member
	deadline   *time.Timer // ends the join phase
}

func newCoordinator(ctx context.Context, s *Server) *coordinator {
	c := &coordinator{s: s, groups: map[string]*group{}, stored: map[string]map[string]bool{}}
	if all, err := s.o.Engine.Secrets(ctx, KindOffset); err == nil {
		for k := range all {
			if ns, g, _, _, ok := parseOffsetKey(k); ok {
				c.remember(ns, g)
			}
		}
	}
	go c.janitor(ctx)
	return c
}

// remember counts a group with stored offsets (c.mu held or before use).
func (c *coordinator) remember(ns, g string) {
	if c.stored[ns] == nil {
		c.stored[ns] = map[string]bool{}
	}
	c.stored[ns][g] = true
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
		for k, g := range c.groups {
			for id, m := range g.members {
				if m.join == nil && m.sync == nil && now.Sub(m.lastSeen) > m.session {
					delete(g.members, id)
					c.rebalance(g)
				}
			}
			if len(g.members) == 0 && g.state == stateEmpty {
				delete(c.groups, k) // its generation restarts; its offsets stay stored
			}
		}
		c.mu.Unlock()
	}
}

// group returns a live group, creating it unless its namespace has
// maxGroups groups already (nil then).
func (c *coordinator) group(ns, name string) *group {
	g := c.groups[groupKey(ns, name)]
	if g == nil {
		if !c.stored[ns][name] && c.groupsOf(ns) >= maxGroups {
			return nil
		}
		g = &group{ns: ns, name: name, members: map[string]*member{}}
		c.groups[groupKey(ns, name)] = g
	}
	return g
}

// groupsOf counts a namespace's groups: live ones and those with offsets.
func (c *coordinator) groupsOf(ns string) int {
	n := len(c.stored[ns])
	for _, g := range c.groups {
		if g.ns == ns && !c.stored[ns][g.name] {
			n++
		}
	}
	return n
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
	ns := namespace(cn.id)
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		return c.join(ctx, ns, r)
	case *kmsg.SyncGroupRequest:
		return c.syncGroup(ctx, ns, r)
	case *kmsg.HeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		c.mu.Lock()
		defer c.mu.Unlock()
		g := c.groups[groupKey(ns, r.Group)]
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
		g := c.groups[groupKey(ns, r.Group)]
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
		return c.fetchOffsets(ctx, ns, r)
	}
	return nil
}

func (c *coordinator) join(ctx context.Context, ns string, r *kmsg.JoinGroupRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	if r.Group == "" || len(r.Group) > 255 || len(r.Protocols) == 0 {
		resp.ErrorCode = errInvalidGroupID
		return resp
	}
	c.mu.Lock()
	g := c.group(ns, r.Group)
	if g == nil {
		c.mu.Unlock()
		resp.ErrorCode = errGroupAuthorization // the namespace has maxGroups groups
		return resp
	}
	if g.members[r.MemberID] == nil && len(g.members) >= maxMembers {
		c.mu.Unlock()
		resp.ErrorCode = errGroupMaxSize
		return resp
	}
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

func (c *coordinator) syncGroup(ctx context.Context, ns string, r *kmsg.SyncGroupRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	c.mu.Lock()
	g := c.groups[groupKey(ns, r.Group)]
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

// offsetKey is where a group's committed offset of a topic partition is
// stored: namespace/group/topic/partition, each part path-escaped.
func offsetKey(ns, group, topic string, partition int32) string {
	return url.PathEscape(ns) + "/" + url.PathEscape(group) + "/" + url.PathEscape(topic) + "/" + strconv.Itoa(int(partition))
}

func parseOffsetKey(k string) (ns, group, topic string, partition int32, ok bool) {
	parts := strings.Split(k, "/")
	if len(parts) != 4 {
		return "", "", "", 0, false
	}
	var err error
	var p int
	if ns, err = url.PathUnescape(parts[0]); err != nil {
		return
	}
	if group, err = url.PathUnescape(parts[1]); err != nil {
		return
	}
	if topic, err = url.PathUnescape(parts[2]); err != nil {
		return
	}
	if p, err = strconv.Atoi(parts[3]); err != nil {
		return
	}
	return ns, group, topic, int32(p), true
}

// commit stores a group's offsets. Only a current member of the group, in
// its current generation, commits; a commit outside the generations
// (generation -1, a consumer that assigns itself partitions) is taken only
// from a signed-in identity and while the group has no members. Offsets
// of topics or partitions that do not exist are refused, not stored.
func (c *coordinator) commit(ctx context.Context, cn *conn, r *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	ns := namespace(cn.id)
	c.mu.Lock()
	g := c.groups[groupKey(ns, r.Group)]
	code := int16(errNone)
	switch {
	case r.Group == "" || len(r.Group) > 255:
		code = errInvalidGroupID
	case r.Generation < 0:
		if cn.id.Anonymous() || (g != nil && len(g.members) > 0) {
			code = errIllegalGeneration
		}
	case g == nil || g.members[r.MemberID] == nil:
		code = errUnknownMember
	case g.state == statePreparing:
		code = errRebalance
	case r.Generation != g.generation:
		code = errIllegalGeneration
	}
	if code == errNone && g == nil && !c.stored[ns][r.Group] && c.groupsOf(ns) >= maxGroups {
		code = errGroupAuthorization // a new group would pass the namespace's cap
	}
	c.mu.Unlock()
	codes := make([][]int16, len(r.Topics))
	write := false
	for i, t := range r.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		for j, p := range t.Partitions {
			switch {
			case code != errNone:
				codes[i][j] = code
			case !c.s.topicExists(t.Topic) || p.Partition != 0:
				codes[i][j] = errUnknownTopic
			case p.Metadata != nil && len(*p.Metadata) > maxOffsetMetadata:
				codes[i][j] = errOffsetMetadataTooLarge
			default:
				write = true
			}
		}
	}
	if write {
		err := c.s.o.Engine.Transact(ctx, func(tx engine.SystemTx) error {
			for i, t := range r.Topics {
				for j, p := range t.Partitions {
					if codes[i][j] != errNone {
						continue
					}
					raw, _ := json.Marshal(committed{Offset: p.Offset, Metadata: p.Metadata})
					if err := tx.PutSecret(KindOffset, offsetKey(ns, r.Group, t.Topic, p.Partition), raw); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			for i := range codes {
				for j := range codes[i] {
					if codes[i][j] == errNone {
						codes[i][j] = errCoordinatorLoad
					}
				}
			}
		} else {
			c.mu.Lock()
			c.remember(ns, r.Group)
			c.mu.Unlock()
		}
	}
	for i, t := range r.Topics {
		rt := kmsg.OffsetCommitResponseTopic{Topic: t.Topic}
		for j, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: p.Partition, ErrorCode: codes[i][j]})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// fetchOffsets answers a group's committed offsets, from the caller's own
// namespace only.
func (c *coordinator) fetchOffsets(ctx context.Context, ns string, r *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	topics := r.Topics
	if topics == nil { // all the group's topics: every topic there is
		for _, t := range c.s.topics() {
			topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t, Partitions: []int32{0}})
		}
	}
	for _, t := range topics {
		rt := kmsg.OffsetFetchResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.OffsetFetchResponseTopicPartition{Partition: p, Offset: -1, LeaderEpoch: -1}
			if raw, err := c.s.o.Engine.Secret(ctx, KindOffset, offsetKey(ns, r.Group, t.Topic, p)); err == nil {
				var cm committed
				if json.Unmarshal(raw, &cm) == nil {
					rp.Offset, rp.Metadata = cm.Offset, cm.Metadata
				}
			} else if r.Topics == nil {
				continue // listing all: only topics with an offset
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		if r.Topics == nil && len(rt.Partitions) == 0 {
			continue
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
