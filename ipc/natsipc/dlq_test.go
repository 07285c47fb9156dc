package natsipc_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// TestDeadLettersOnJetStream: a JetStream consumer that never manages to
// handle a message, and an ipc handler that fails, both leave a dead
// letter in one durable queue, with the message and why; replaying puts
// each back where it came from.
func TestDeadLettersOnJetStream(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{JetStream: true, StoreDir: t.TempDir()})
	c := connect(t, srv.URL())
	dlq, err := natsipc.StartDeadLetters(t.Context(), c, natsipc.DeadLetterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	watcher := connect(t, srv.URL())
	dead := make(chan *ipc.Msg, 4)
	watcher.Subscribe("$IPC.DLQ.>", func(m *ipc.Msg) { dead <- m })
	flush(t, watcher)

	// A work queue whose consumer gives up after three deliveries.
	js, err := jetstream.New(natsipc.NATS(c))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, "JOBS", jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 3})
	if err != nil {
		t.Fatal(err)
	}
	deliveries := make(chan string, 16)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		deliveries <- m.Subject()
		m.Nak() // cannot do it
	})
	if err != nil {
		t.Fatal(err)
	}
	job := nats.NewMsg("jobs.resize")
	job.Header.Set("Image", "cat.png")
	job.Data = []byte("800x600")
	if _, err := js.PublishMsg(ctx, job); err != nil {
		t.Fatal(err)
	}
	m := <-dead
	cc.Stop()
	if m.Subject != "$IPC.DLQ.max_deliveries" || string(m.Data) != "800x600" || m.Header.Get("Image") != "cat.png" ||
		m.Header.Get(ipc.HeaderDLQSubject) != "jobs.resize" || m.Header.Get(natsipc.HeaderDLQStream) != "JOBS" ||
		m.Header.Get(natsipc.HeaderDLQConsumer) != "worker" || m.Header.Get(natsipc.HeaderDLQDeliveries) != "3" {
		t.Errorf("dead letter %v: %q %v", m, m.Data, m.Header)
	}
	if n := len(deliveries); n != 3 {
		t.Errorf("the consumer got the message %d times, want 3", n)
	}

	// An ipc handler that fails: ipc's own dead letter, kept too.
	var full atomic.Bool
	full.Store(true)
	sent := make(chan string, 1)
	ipc.NewTopic[string](c, "mail.send").Subscribe(func(ctx context.Context, to string) error {
		if full.Load() {
			return errors.New("mailbox full")
		}
		sent <- to
		return nil
	}, ipc.Attempts(2))
	flush(t, c)
	if err := ipc.NewTopic[string](watcher, "mail.send").Publish("bob@example.com"); err != nil {
		t.Fatal(err)
	}
	<-dead
	// JetStream stores what reaches the server on its own goroutines.
	waitFor(t, "the stream to store both", func() bool {
		n, err := dlq.Len(ctx)
		return err == nil && n == 2
	})

	var letters []ipc.DeadLetter
	for dl, err := range dlq.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		letters = append(letters, dl)
	}
	if len(letters) != 2 {
		t.Fatalf("the queue holds %d dead letters, want 2: %+v", len(letters), letters)
	}
	if dl := letters[0]; dl.Reason != natsipc.ReasonMaxDeliveries || dl.Msg.Subject != "jobs.resize" ||
		string(dl.Msg.Data) != "800x600" || dl.Msg.Header.Get("Image") != "cat.png" || dl.Err == nil {
		t.Errorf("first dead letter = %+v (%v)", dl, dl.Msg.Header)
	}
	if dl := letters[1]; dl.Reason != ipc.ReasonHandlerFailed || dl.Msg.Subject != "mail.send" || dl.Err == nil || dl.Err.Error() != "mailbox full" {
		t.Errorf("second dead letter = %+v", dl)
	}

	// Replay the job: JOBS stores it again.
	n, err := dlq.Replay(ctx, func(dl ipc.DeadLetter) bool { return dl.Reason == natsipc.ReasonMaxDeliveries })
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	jobs, err := js.Stream(ctx, "JOBS")
	if err != nil {
		t.Fatal(err)
	}
	last, err := jobs.GetLastMsgForSubject(ctx, "jobs.resize")
	if err != nil || last.Sequence != 2 || string(last.Data) != "800x600" || last.Header.Get("Image") != "cat.png" {
		t.Errorf("the replayed job in JOBS: %+v, %v", last, err)
	}
	// Replay the mail once the mailbox has room.
	full.Store(false)
	if n, err := dlq.Replay(ctx, nil); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	if to := <-sent; to != "bob@example.com" {
		t.Errorf("the replayed mail went to %q", to)
	}
	for dl := range dlq.All(ctx) {
		t.Errorf("dead letter %d stayed after its replay", dl.Seq)
	}
}
