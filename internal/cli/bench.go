package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/mantlehq/mantle/internal/bench"
)

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	var o bench.Options
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8090", "the server to load")
	workloads := fs.String("workload", "create,get,list,mixed,realtime", "comma-separated workloads")
	fs.IntVar(&o.Concurrency, "c", 32, "concurrent clients")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long each workload runs")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured warm-up before each workload")
	fs.IntVar(&o.Preload, "preload", 5000, "records to create before the run")
	fs.IntVar(&o.BodyBytes, "body", 300, "bytes of text in each record's body")
	fs.StringVar(&o.Collection, "collection", "posts", "collection with title, body and views fields (the blog example's posts)")
	fs.StringVar(&o.Token, "token", os.Getenv("MANTLE_BENCH_TOKEN"), "bearer token, if the collection's rules need one")
	fs.IntVar(&o.Subscribers, "subscribers", 100, "realtime: SSE subscribers")
	fs.IntVar(&o.WSSubscribers, "ws", 0, "realtime: WebSocket subscribers, besides the SSE ones")
	fs.IntVar(&o.Rate, "rate", 500, "realtime: writes per second")
	fs.StringVar(&o.WriteURL, "write-url", "", "realtime: write to this server (another node of a cluster) while subscribers follow --url")
	fs.StringVar(&o.KafkaAddr, "kafka", "", "kafka workload: the server's Kafka listener, such as 127.0.0.1:9092")
	fs.IntVar(&o.KafkaEvents, "kafka-events", 1_000_000, "kafka workload: events to preload and read")
	fs.IntVar(&o.RuleRecords, "rule-records", 50000, "rule workloads: records in each of the open and owned collections")
	baseline := fs.Bool("baseline", false, "also measure a bare net/http server returning the same JSON and fanning out the same events (the loopback ceiling)")
	serveBaseline := fs.String("serve-baseline", "", "internal: serve the baseline on ADDR")
	writer := fs.Bool("realtime-writer", false, "internal: make the realtime workload's writes and print one line per write")
	run := fs.String("run", "", "internal: the run id, with --realtime-writer")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if *serveBaseline != "" {
		ln, err := net.Listen("tcp", *serveBaseline)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "baseline on http://%s\n", ln.Addr())
		return bench.ServeBaseline(ctx, ln, o.BodyBytes)
	}
	if *writer {
		bw := bufio.NewWriter(stdout)
		defer bw.Flush()
		_, _, err := bench.WriteAtRate(ctx, o, *run, func(w bench.Written) { bench.PrintWritten(bw, w) })
		return err
	}
	o.Workloads = splitComma(*workloads)
	o.Log = stderr
	if exe, err := os.Executable(); err == nil {
		o.WriterCommand = []string{exe, "bench", "--realtime-writer"}
	}
	results, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	if *baseline {
		url, stop, err := startBaseline(o.BodyBytes)
		if err != nil {
			return err
		}
		defer stop()
		bo := o
		bo.URL, bo.Target, bo.Token = url, "baseline", ""
		bo.Workloads = nil
		for _, w := range o.Workloads {
			if w != "login" && w != "kafka" && w != "functions" && !strings.HasPrefix(w, "fn-") && !strings.HasSuffix(w, "-owned") && !strings.HasSuffix(w, "-open") {
				bo.Workloads = append(bo.Workloads, w)
			}
		}
		if len(bo.Workloads) > 0 {
			br, err := bench.Run(ctx, bo)
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			results = append(results, br...)
		}
	}
	fmt.Fprintf(stdout, "\nc=%d, %s per workload, %d preloaded records with %d-byte bodies; list = views > N, sort -views, 20 per page\n\n",
		o.Concurrency, o.Duration, o.Preload, o.BodyBytes)
	bench.Print(stdout, results)
	return nil
}

// startBaseline runs the baseline server as a separate process, like the
// real server, so the two are measured the same way.
func startBaseline(bodyBytes int) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe, "bench", "--serve-baseline", "127.0.0.1:0", "--body", fmt.Sprint(bodyBytes))
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("baseline server: %w", err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "baseline on ")), stop, nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
