package main

// Temporary: keeps the modules the manifest and browser tests need in go.mod while they are written.
import (
	_ "github.com/chromedp/chromedp"
	_ "k8s.io/api/apps/v1"
	_ "sigs.k8s.io/kustomize/api/krusty"
	_ "sigs.k8s.io/kustomize/kyaml/filesys"
	_ "sigs.k8s.io/yaml"
)
