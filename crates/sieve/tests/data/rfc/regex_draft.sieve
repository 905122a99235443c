require ["regex", "variables", "fileinto"];
if address :regex :comparator "i;ascii-casemap" "from" [
        "stephan(\\+.*)?@it\\.example\\.com",
        "stephan(\\+.*)?@friep\\.example\\.com"
        ] {
    fileinto "Stephan";
}
if header :regex "subject" "^\\[([a-z-]+)\\] (.*)$" {
    fileinto "Lists/${1}";
}
