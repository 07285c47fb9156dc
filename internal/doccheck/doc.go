// Package doccheck has no code: its test keeps the repository's comments
// and docs self-contained. Every document they cite is a file in the
// repository, and every section number (§) names the document it refers
// to and a section that document has.
package doccheck
