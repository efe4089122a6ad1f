package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaRead preloads o.KafkaEvents records (batches of 1,000) and then
// reads the whole log over the Kafka protocol with the franz-go client,
// from the first offset to the last, measuring events per second.
func (r *runner) kafkaRead(ctx context.Context) (*Result, error) {
	if r.o.KafkaAddr == "" {
		return nil, fmt.Errorf("the kafka workload needs --kafka ADDR (serve with --kafka)")
	}
	batchURL := strings.TrimRight(r.o.URL, "/") + "/api/batch"
	want := int64(r.o.KafkaEvents)
	if r.o.KafkaEvents < 0 { // no preload: read the log as it is
		hw, err := highWatermark(ctx, r.o.KafkaAddr)
		if err != nil {
			return nil, err
		}
		want = hw - 1 // all but schema.applied, which is for administrators
	}
	for left := r.o.KafkaEvents; left > 0; left -= 1000 {
		var b bytes.Buffer
		b.WriteString(`{"ops":[`)
		for i := 0; i < min(1000, left); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"op":"create","collection":%q,"data":%s}`, r.o.Collection, r.newRecord())
		}
		b.WriteString("]}")
		status, body, err := r.do(ctx, "POST", batchURL, b.Bytes())
		if err != nil || status != 200 {
			return nil, fmt.Errorf("preload: %d %.200s %v", status, body, err)
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(r.o.KafkaAddr), kgo.ConsumeTopics("mantle.log"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64 << 20), kgo.FetchMaxPartitionBytes(16 << 20)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	res := &Result{}
	start := time.Now()
	var n int64
	for n < want {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := fs.Err0(); err != nil && n == 0 {
			return nil, err
		}
		got := int64(fs.NumRecords())
		if got == 0 && pctx.Err() != nil {
			return nil, fmt.Errorf("read %d of %d events, then nothing for 30s", n, want)
		}
		n += got
	}
	res.Duration = time.Since(start)
	res.Requests = int(n)
	return res, nil
}

// highWatermark asks the broker for the end of the whole log.
func highWatermark(ctx context.Context, addr string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = "mantle.log"
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Timestamp = -1
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	return resp.Topics[0].Partitions[0].Offset, nil
}
