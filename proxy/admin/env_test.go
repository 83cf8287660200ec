package admin_test

import "github.com/fedicache/fedicache/proxy/proxytest"

// The admin token of the stacks the tests start (proxytest.NewEnv), and keys of the bucket and
// of the old volume.
const (
	adminToken = proxytest.AdminToken
	bucketKey  = "media_attachments/files/109/852/623/730/091/815/original/0123456789abcdef.jpg"
	volumeKey  = "media_attachments/files/000/000/042/original/fedcba9876543210.mp4"
)
