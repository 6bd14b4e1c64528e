// Package version holds the dsync-export release version, recorded in every
// Parquet file's key-value metadata and in every snapshot manifest.
package version

// Version is the dsync-export version. Release builds override it with
//
//	-ldflags "-X github.com/dsync-export/dsync-export/pkg/version.Version=v1.2.3"
var Version = "0.1.0-dev"
