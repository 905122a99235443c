require ["fileinto", "fileinto"];
fileinto "A";
