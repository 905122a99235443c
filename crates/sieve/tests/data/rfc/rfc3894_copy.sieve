require ["copy", "fileinto"];
if header :contains "subject" "important" {
    redirect :copy "boss@example.com";
}
fileinto :copy "Archive";
