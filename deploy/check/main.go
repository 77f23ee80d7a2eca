// Command baton-deploy-lint checks Baton's packaging without a Docker engine
// or a network, with the libraries the Docker tools themselves use:
//
//	baton-deploy-lint dockerfile FILE    BuildKit's Dockerfile checks (what
//	                                     `docker build --check` runs); any
//	                                     warning fails
//	baton-deploy-lint image-policy FILE  Baton's rules for its image: the
//	                                     final stage runs as a fixed non-root
//	                                     uid, has a HEALTHCHECK, exposes 7700
//	                                     and 9464, and pins every base image
//	baton-deploy-lint compose FILE       compose-go's loader (what
//	                                     `docker compose config` runs): the
//	                                     Compose schema, interpolation and
//	                                     references; plus every service has
//	                                     a healthcheck and publishes ports on
//	                                     loopback only
//
// BuildKit resolves each base image's configuration from its registry to run
// some checks (the platform check, variables the base image defines). Here
// no registry is reachable, so a stand-in answers every base image with a
// linux image of the requested platform whose environment is only PATH: a
// Dockerfile that relies on another variable set by its base image (say
// $CARGO_HOME) gets an UndefinedVar warning it would not get from Docker.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: baton-deploy-lint dockerfile|image-policy|compose FILE")
		os.Exit(2)
	}
	var problems []string
	var err error
	switch os.Args[1] {
	case "dockerfile":
		problems, err = lintDockerfile(os.Args[2])
	case "image-policy":
		problems, err = imagePolicy(os.Args[2])
	case "compose":
		problems, err = lintCompose(os.Args[2])
	default:
		fmt.Fprintf(os.Stderr, "unknown check %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[2], err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

// offlineImages answers BuildKit's base-image lookups without a registry.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	platform := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		platform = *opt.ImageOpt.Platform
	}
	config := map[string]any{
		"architecture": platform.Architecture,
		"os":           platform.OS,
		"variant":      platform.Variant,
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		// Not scratch: one layer.
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest.FromString(ref).String()}},
	}
	dt, err := json.Marshal(config)
	return ref, "", dt, err
}

func lintDockerfile(path string) ([]string, error) {
	dt, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	source := llb.NewSourceMap(nil, path, "Dockerfile", dt)
	source.Definition = &llb.Definition{}
	results, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		Config:       dockerui.Config{},
		SourceMap:    source,
		MetaResolver: offlineImages{},
	})
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, w := range results.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		problems = append(problems, fmt.Sprintf("%s:%d: %s: %s (%s)", path, line, w.RuleName, w.Detail, w.URL))
	}
	if results.Error != nil {
		line := 0
		if len(results.Error.Location.Ranges) > 0 {
			line = int(results.Error.Location.Ranges[0].Start.Line)
		}
		problems = append(problems, fmt.Sprintf("%s:%d: error: %s", path, line, results.Error.Message))
	}
	return problems, nil
}

// A base image is pinned when it names a tag other than latest (a version, or
// a Debian release such as bookworm-slim), or a digest.
var pinned = regexp.MustCompile(`^[^@]+:[A-Za-z0-9_][A-Za-z0-9_.-]*(@sha256:[0-9a-f]{64})?$|@sha256:[0-9a-f]{64}$`)

func imagePolicy(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		return nil, err
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return []string{path + ": no stages"}, nil
	}
	var problems []string
	names := map[string]bool{}
	for _, st := range stages {
		if st.Name != "" {
			names[strings.ToLower(st.Name)] = true
		}
	}
	for _, st := range stages {
		base := st.BaseName
		if names[strings.ToLower(base)] || base == "scratch" {
			continue
		}
		if strings.Contains(base, "$") || !pinned.MatchString(base) || strings.Contains(base, ":latest") {
			problems = append(problems, fmt.Sprintf("%s: FROM %s: pin the base image to a version tag or a digest", path, base))
		}
	}
	final := stages[len(stages)-1]
	var user string
	var health *instructions.HealthCheckCommand
	exposed := map[string]bool{}
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.ExposeCommand:
			for _, p := range c.Ports {
				exposed[strings.TrimSuffix(p, "/tcp")] = true
			}
		}
	}
	uid := strings.SplitN(user, ":", 2)[0]
	switch {
	case user == "":
		problems = append(problems, fmt.Sprintf("%s: the final stage has no USER: it would run as root", path))
	case !regexp.MustCompile(`^[0-9]+$`).MatchString(uid):
		problems = append(problems, fmt.Sprintf("%s: USER %s: use a numeric uid, so Kubernetes' runAsNonRoot can verify it", path, user))
	case uid == "0":
		problems = append(problems, fmt.Sprintf("%s: USER %s: the final stage must not run as root", path, user))
	}
	if health == nil || len(health.Health.Test) == 0 || health.Health.Test[0] == "NONE" {
		problems = append(problems, fmt.Sprintf("%s: the final stage has no HEALTHCHECK", path))
	}
	for _, port := range []string{"7700", "9464"} {
		if !exposed[port] {
			problems = append(problems, fmt.Sprintf("%s: the final stage does not EXPOSE %s", path, port))
		}
	}
	return problems, nil
}

func lintCompose(path string) ([]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	options, err := cli.NewProjectOptions([]string{abs},
		cli.WithOsEnv,
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithDotEnv,
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	var problems []string
	names := make([]string, 0, len(project.Services))
	for name := range project.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		service := project.Services[name]
		if service.HealthCheck == nil || service.HealthCheck.Disable || len(service.HealthCheck.Test) == 0 {
			problems = append(problems, fmt.Sprintf("%s: service %s has no healthcheck", path, name))
		}
		for _, port := range service.Ports {
			if port.Published != "" && port.HostIP != "127.0.0.1" && port.HostIP != "::1" {
				problems = append(problems, fmt.Sprintf("%s: service %s publishes %s on %q, not on loopback", path, name, port.Published, port.HostIP))
			}
		}
		if service.Build != nil {
			dockerfile := service.Build.Dockerfile
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(service.Build.Context, dockerfile)
			}
			if _, err := os.Stat(dockerfile); err != nil {
				problems = append(problems, fmt.Sprintf("%s: service %s: build: %v", path, name, err))
			}
		}
	}
	if len(problems) == 0 {
		fmt.Printf("%s: project %s, services %s, volumes %d\n", path, project.Name, strings.Join(names, " "), len(project.Volumes))
	}
	return problems, nil
}
