// Go tools the test command runs (npm run test:go, toolchain/agentTest.ts), pinned like the CLI in
// ../go.mod: staticcheck at a release that supports the agent's go 1.26. Built into the toolchain
// cache, keyed by this file, go.sum and the Go version.
module complinist/toolchain/tools

go 1.26.0

tool honnef.co/go/tools/cmd/staticcheck

require (
	github.com/BurntSushi/toml v1.4.1-0.20240526193622-a339e1f7089c // indirect
	golang.org/x/exp/typeparams v0.0.0-20231108232855-2478ac86f678 // indirect
	golang.org/x/mod v0.41.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/tools v0.51.0 // indirect
	honnef.co/go/tools v0.8.2 // indirect
)
