// Package redisscript runs Lua scripts by their SHA1 (EVALSHA), alone or pipelined with other
// commands, and recovers once when Redis lost its script cache (a restart, a failover to a
// replica that never saw the script, SCRIPT FLUSH) and answered NOSCRIPT.
package redisscript

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Client is what running scripts needs of a Redis client (redis.UniversalClient has it).
type Client interface {
	Pipeline() redis.Pipeliner
	redis.Scripter
}

// Every go-redis client (single node, cluster, failover) runs scripts here.
var _ Client = redis.UniversalClient(nil)

// Exec sends the commands fill queues in one pipeline and returns them with the first error,
// as Pipeliner.Exec does. fill calls scripts with Script.EvalSha so their bodies are not sent
// each time. When Redis answers NOSCRIPT, Exec loads the missing scripts (from scripts) and
// sends exactly the calls that failed once more, in their order, in a second pipeline; commands
// that succeeded are not repeated, and each returned command holds its final reply. So the
// scripts then run after the commands queued behind them: a command that depends on what a
// script did (an EXPIRE of a key the script creates) belongs in the script.
func Exec(ctx context.Context, c Client, fill func(redis.Pipeliner), scripts ...*redis.Script) ([]redis.Cmder, error) {
	pipe := c.Pipeline()
	fill(pipe)
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return cmds, nil
	}
	var missing []*redis.Cmd
	for _, cmd := range cmds {
		if sc, ok := cmd.(*redis.Cmd); ok && redis.HasErrorPrefix(sc.Err(), "NOSCRIPT") {
			missing = append(missing, sc)
		}
	}
	if len(missing) == 0 {
		return cmds, err
	}
	if err := load(ctx, c, missing, scripts); err != nil {
		for _, m := range missing {
			m.SetErr(err)
		}
		return cmds, err
	}
	pipe = c.Pipeline()
	again := make([]*redis.Cmd, len(missing))
	for i, m := range missing {
		again[i] = redis.NewCmd(ctx, m.Args()...)
		_ = pipe.Process(ctx, again[i])
	}
	_, _ = pipe.Exec(ctx) // each reply is copied to its first call below
	for i, m := range missing {
		m.SetVal(again[i].Val())
		m.SetErr(again[i].Err())
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}

// Run evaluates one script on its own, with the same recovery as Exec.
func Run(ctx context.Context, c Client, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	var cmd *redis.Cmd
	_, _ = Exec(ctx, c, func(p redis.Pipeliner) { cmd = s.EvalSha(ctx, p, keys, args...) }, s)
	return cmd
}

// load loads every script a missing call names (EVALSHA's second argument is the hash). On a
// cluster client SCRIPT LOAD reaches every primary.
func load(ctx context.Context, c Client, missing []*redis.Cmd, scripts []*redis.Script) error {
	need := map[string]bool{}
	for _, m := range missing {
		if args := m.Args(); len(args) > 1 {
			if sha, ok := args[1].(string); ok {
				need[sha] = true
			}
		}
	}
	for _, s := range scripts {
		if !need[s.Hash()] {
			continue
		}
		if err := s.Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("load script %s: %w", s.Hash(), err)
		}
		delete(need, s.Hash())
	}
	for sha := range need {
		return fmt.Errorf("load script %s: not among the scripts given", sha)
	}
	return nil
}
