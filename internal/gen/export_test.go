package gen

import "context"

// TypeErrors type-checks files as one package and returns its type errors.
func TypeErrors(ctx context.Context, files ...string) ([]error, error) {
	p, err := load(ctx, Config{Files: files}, "")
	if err != nil {
		return nil, err
	}
	return p.errs, nil
}
