require ["editheader", "variables"];
if header :matches "subject" "*" {
    set "s" "${1}";
}
addheader "X-Original-Subject" "${s}";
addheader :last "X-Note" "café au lait";
addheader :last "X-Greeting" "Grüße aus Köln";
addheader :last "X-Japanese" "日本語のテキスト";
addheader :last "X-Mixed" "éé xx éé and more";
