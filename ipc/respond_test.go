package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/procxy/procxy/ipc"
)

// A handler of raw messages answers with an error; the requester gets it
// as a *RemoteError, with the code it was given.
func ExampleMsg_RespondError() {
	_, req, resp, stop := startExample()
	defer stop()
	resp.Subscribe("files.read", func(m *ipc.Msg) {
		m.RespondError(&ipc.RemoteError{Code: "ENOENT", Message: "no such file: " + string(m.Data)})
	})
	resp.Flush(context.Background())

	_, err := req.Request(context.Background(), "files.read", []byte("notes.txt"))
	var re *ipc.RemoteError
	fmt.Println(errors.As(err, &re), re.Code, re.Message)

	// Without a reply subject there is nobody to answer.
	fmt.Println(ipc.NewMsg("files.read", nil).RespondError(errors.New("no")) == ipc.ErrNoReply)
	// Output:
	// true ENOENT no such file: notes.txt
	// true
}

// A handler that answers a plain request with one reply and a streamed
// request with a stream.
func ExampleMsg_Streaming() {
	_, req, resp, stop := startExample()
	defer stop()
	resp.Subscribe("words", func(m *ipc.Msg) {
		w, _ := m.Stream()
		if !m.Streaming() {
			w.Send([]byte("one two three"))
		} else {
			for _, word := range strings.Fields("one two three") {
				w.Send([]byte(word))
			}
		}
		w.Close(nil)
	})
	resp.Flush(context.Background())

	r, _ := req.Request(context.Background(), "words", nil)
	fmt.Printf("%s\n", r.Data)
	for m, err := range req.RequestStream(context.Background(), ipc.NewMsg("words", nil)) {
		fmt.Println(string(m.Data), err)
	}
	// Output:
	// one two three
	// one <nil>
	// two <nil>
	// three <nil>
}
