require ["fileinto"];
# rule:[Has list]
if exists ["list-id", "list-post"]
{
	fileinto "Lists";
}
