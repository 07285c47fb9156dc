package childproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Node's channel variables (docs/NODE-IPC.md §1.3).
const (
	envChannelFD   = "NODE_CHANNEL_FD"
	envChannelMode = "NODE_CHANNEL_SERIALIZATION_MODE"
	envUniqueID    = "NODE_UNIQUE_ID"
)

// childEnv returns the child's environment: env (nil means the parent's)
// without duplicates and without stale channel variables, plus the channel's variables when
// ipcFD >= 0. Node appends its variables without removing duplicates, and
// the first occurrence wins in both Node and Go, so a stale
// NODE_CHANNEL_FD would point the child at the wrong fd (§8.7).
func childEnv(env []string, ipcFD int) []string {
	if env == nil {
		env = os.Environ()
	}
	drop := []string{envChannelFD, envChannelMode}
	if ipcFD >= 0 {
		drop = append(drop, envUniqueID)
	}
	// Keep the last value of a duplicated key, as os/exec does (a Node env
	// is an object and cannot hold duplicates).
	last := make(map[string]int, len(env))
	for i, kv := range env {
		key, _, _ := strings.Cut(kv, "=")
		last[key] = i
	}
	out := make([]string, 0, len(env)+2)
	for i, kv := range env {
		key, _, _ := strings.Cut(kv, "=")
		if last[key] == i && !containsString(drop, key) {
			out = append(out, kv)
		}
	}
	if ipcFD >= 0 {
		out = append(out, envChannelFD+"="+strconv.Itoa(ipcFD), envChannelMode+"=json")
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// lookupEnv returns the last value of key in env, the one childEnv keeps.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// defaultPath is what execvp searches when the environment has no PATH.
const defaultPath = "/usr/bin:/bin"

// lookPath finds file the way Node (libuv, execvp) does: a name containing
// a slash is used as is, relative to dir; any other name is searched in
// the PATH of the child's environment env, not the parent's. Like execvp it
// skips candidates it cannot execute and reports EACCES only when no
// candidate was found at all.
func lookPath(file, dir string, env []string) (string, error) {
	if strings.ContainsRune(file, '/') {
		if err := checkExecutable(inDir(dir, file)); err != nil {
			return "", err
		}
		return file, nil
	}
	path, ok := lookupEnv(env, "PATH")
	if !ok {
		path = defaultPath
	}
	var denied error
	for _, elem := range filepath.SplitList(path) {
		if elem == "" {
			elem = "." // execvp: an empty entry is the current directory
		}
		cand := filepath.Join(elem, file)
		if !filepath.IsAbs(cand) {
			cand = "." + string(filepath.Separator) + cand
		}
		err := checkExecutable(inDir(dir, cand))
		if err == nil {
			return cand, nil
		}
		if denied == nil && isErrno(err, syscall.EACCES) {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", &os.PathError{Op: "exec", Path: file, Err: syscall.ENOENT}
}

// inDir resolves a relative path against the child's directory.
func inDir(dir, p string) string {
	if dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// validate applies Node's synchronous argument checks.
func validate(file string, args []string, r *resolved) error {
	if file == "" {
		return fmt.Errorf("%w: empty program name", ErrInvalidArgument)
	}
	check := func(what, s string) error {
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%w: %s contains a NUL byte: %q", ErrInvalidArgument, what, s)
		}
		return nil
	}
	if err := check("program name", file); err != nil {
		return err
	}
	if err := check("Argv0", r.Argv0); err != nil {
		return err
	}
	for _, a := range args {
		if err := check("argument", a); err != nil {
			return err
		}
	}
	for _, kv := range r.Env {
		if err := check("environment entry", kv); err != nil {
			return err
		}
	}
	if err := r.Limits.validate(); err != nil {
		return err
	}
	if r.Timeout < 0 {
		return fmt.Errorf("%w: negative Timeout %v", ErrInvalidArgument, r.Timeout)
	}
	return nil
}
