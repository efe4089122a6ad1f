package app

import (
	"errors"
	"fmt"

	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/egress"
	"github.com/mantlehq/mantle/internal/project"
)

// CheckProject is the one validation of a project against the settings it
// will run with, for plan, apply and serve alike, before anything is
// applied: a project that serve would refuse is refused by plan and apply
// too. It checks what the project file alone cannot: webhook URLs and
// automation webhook steps against the SSRF guard (--webhook-allow-private),
// and OIDC providers against the public URL.
func CheckProject(p *project.Project, cfg config.Config) error {
	var errs []error
	for _, h := range p.Webhooks {
		if err := egress.CheckURL(h.URL, cfg.WebhookAllowPrivate); err != nil {
			errs = append(errs, fmt.Errorf("webhook %s: %w", h.Name, err))
		}
	}
	for _, a := range p.Automations {
		for _, st := range a.Do {
			if st.Kind != "webhook" {
				continue
			}
			if err := egress.CheckURL(st.URL, cfg.WebhookAllowPrivate); err != nil {
				errs = append(errs, fmt.Errorf("automation %s step %s: %w", a.Name, st.Name, err))
			}
		}
	}
	if len(p.OIDC) > 0 && cfg.PublicURL == "" {
		errs = append(errs, errors.New("the project configures OIDC sign-in, which needs the server's public URL for its callbacks: set --public-url (MANTLE_PUBLIC_URL), such as https://api.example.com"))
	}
	return errors.Join(errs...)
}
