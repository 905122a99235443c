if true { require "fileinto"; }
