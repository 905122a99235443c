require ["editheader", "fileinto", "mailbox"];
if header :contains "x-spam-flag" "YES" {
    deleteheader "x-spam-flag";
    addheader "X-Spam-Moved" "yes";
    fileinto :create "Junk";
    stop;
}
deleteheader :is "precedence" "list";
