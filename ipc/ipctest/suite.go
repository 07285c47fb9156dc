// Package ipctest is the conformance suite every ipc backend must pass:
// the ipc server's clients and its own endpoint, and NATS through package
// natsipc. It uses only the public ipc API, so a backend is judged by what
// its users see.
//
//	func TestConformance(t *testing.T) {
//		ipctest.Run(t, func(t *testing.T) ipctest.Backend { return newMyBackend(t) })
//	}
package ipctest

import (
	"testing"

	"github.com/procxy/procxy/ipc"
)

// Backend is one message bus under test.
type Backend interface {
	// Connect returns a new connection to the bus with opts applied; the
	// test closes it. Every connection of one Backend reaches the others.
	Connect(t testing.TB, opts ...ipc.Option) *ipc.Conn
	// Features says what the bus does beyond NATS's core.
	Features() Features
}

// Features a backend may have.
type Features struct {
	// RoutingAcks: PublishSync learns that nobody subscribes (ErrNoSubscribers).
	RoutingAcks bool
	// PeerDeath: a requester learns at once that its responder's
	// connection died (ErrResponderGone), and a responder that its
	// requester's did (its context ends). Without it, keepalives and
	// heartbeats tell, later.
	PeerDeath bool
}

// Run runs the whole suite; newBackend makes a fresh bus for each test.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"Subjects", testSubjects},
		{"InvalidSubjects", testInvalidSubjects},
		{"QueueGroups", testQueueGroups},
		{"Ordering", testOrdering},
		{"Headers", testHeaders},
		{"SyncSubscription", testSyncSubscription},
		{"AutoUnsubscribe", testAutoUnsubscribe},
		{"SlowConsumer", testSlowConsumer},
		{"RequestReply", testRequestReply},
		{"NoResponders", testNoResponders},
		{"RequestCancel", testRequestCancel},
		{"RequestDeadline", testRequestDeadline},
		{"ResponderConnClosed", testResponderConnClosed},
		{"RemoteErrors", testRemoteErrors},
		{"TypedHelpers", testTypedHelpers},
		{"Stream", testStream},
		{"StreamBreak", testStreamBreak},
		{"StreamFlowControl", testStreamFlowControl},
		{"Upload", testUpload},
		{"MaxPayload", testMaxPayload},
		{"BigMessages", testBigMessages},
		{"PublishSync", testPublishSync},
		{"DeadLetters", testDeadLetters},
		{"Channel", testChannel},
		{"ChannelPeerGone", testChannelPeerGone},
		{"Drain", testDrain},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBackend(t)) })
	}
}
