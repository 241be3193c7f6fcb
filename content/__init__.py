"""The site's own guide pages (Markdown in content/zh and content/en); content.pages reads them."""
