package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/tlsreload"
)

// tokenReloadInterval is how often the token files are re-read.
const tokenReloadInterval = time.Second

// apiTLS loads the API listener's TLS configuration, nil when api.tls is
// off. The certificate, key and client CA bundle are re-read when they
// change (tlsreload). An error names the field whose file failed.
func apiTLS(c config.APITLS, log *slog.Logger) (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	r, err := tlsreload.New(c.CertFile, c.KeyFile, log.With("listener", "api"))
	if err != nil {
		return nil, fmt.Errorf("api.tls.cert_file, api.tls.key_file: %w", err)
	}
	var cas *tlsreload.CAPool
	if c.ClientCAFile != "" {
		if cas, err = tlsreload.NewCAPool(c.ClientCAFile, log.With("listener", "api")); err != nil {
			return nil, fmt.Errorf("api.tls.client_ca_file: %w", err)
		}
	}
	return tlsreload.ServerConfig(r, cas), nil
}

// principals resolves the configured tokens; when there are none, the
// generated admin token in the data directory (created on first use) is
// the only one.
func principals(cfg *config.Config, log *slog.Logger) ([]auth.Principal, error) {
	ps, err := cfg.Principals()
	if err != nil {
		return nil, err
	}
	if len(ps) > 0 {
		return ps, nil
	}
	path, token, created, err := auth.EnsureAdminToken(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	log.Info("no tokens configured; using the generated admin token", "token_file", path, "created", created)
	return []auth.Principal{auth.NewPrincipal("generated-admin", auth.RoleAdmin, nil, auth.Digest(token))}, nil
}

// reloadTokens re-reads the token files every tokenReloadInterval until ctx
// ends and swaps the new set into a whole. A set that fails to resolve
// keeps the previous one and is logged once per distinct error. Logs name
// the tokens, never their secrets.
func reloadTokens(ctx context.Context, cfg *config.Config, a *auth.Authenticator, log *slog.Logger) {
	t := time.NewTicker(tokenReloadInterval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ps, err := cfg.Principals()
		if err == nil && len(ps) == 0 {
			ps, err = principals(cfg, slog.New(slog.DiscardHandler))
		}
		if err != nil {
			if err.Error() != lastErr {
				log.Error("token reload failed; the previous tokens stay in force", "err", err)
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		if a.Replace(ps) {
			log.Info("tokens reloaded", "tokens", a.Names())
		}
	}
}
