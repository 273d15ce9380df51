module github.com/pulpdist/pulpdist/migrations

go 1.26.0
