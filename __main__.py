"""The Pulumi program: `pulumi up -s <stack>` runs this with stacks/Pulumi.<stack>.yaml."""

from blueprints import main

main()
