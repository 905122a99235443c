if exists "x-cron-job" {
    redirect "cron-jobs@example.net";
}
if header :contains ["from"] "coyote" {
    redirect "acm@exampl*.com";
} elsif header :contains "subject" "$$$" {
    redirect "postmaster@example.com";
}
