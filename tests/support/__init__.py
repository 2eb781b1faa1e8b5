"""What the tests bring along by themselves: Stripe's vendored fixtures, a throwaway PostgreSQL
server when none answers, and the Chromium the browser tests drive."""
