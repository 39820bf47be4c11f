"""The Dahua / Amcrest CGI dialect. See docs/dahua.md."""
