require ["encoded-character", "fileinto"];
if header :contains "Subject" "$${hex:24 24}" {
    fileinto "${unicode:40}money";
}
