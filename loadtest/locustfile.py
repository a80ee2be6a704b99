"""The original guide's load test ("Tests de Charge"), against Palisade's /auth routes.

Fixed from the guide: `self.client.id` does not exist in locust, so each simulated user gets a
unique name from a UUID; the refresh token returned by a login is kept and rotated (each refresh
spends it and returns the next one, as the server requires).

Run (bounded in time, loopback only):
    pip install locust
    cargo run --release -- serve &            # 127.0.0.1:8080
    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080 \
        --headless --users 50 --spawn-rate 10 --run-time 60s --exit-code-on-error 1
The run fails (exit code 1) if any request fails.
"""

import uuid

from locust import HttpUser, between, task


class SecurityLoadTest(HttpUser):
    wait_time = between(1, 3)

    def on_start(self):
        """Create a unique account for this simulated user, then log in."""
        self.login_data = {
            "username": f"test_{uuid.uuid4().hex}@example.com",
            "password": "TestPassword123!-" + uuid.uuid4().hex[:8],
        }
        with self.client.post("/auth/register", json=self.login_data, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"register: {response.status_code} {response.text}")
        self.access_token = None
        self.refresh_token = None
        self.test_login()

    def _keep(self, body):
        self.access_token = body["access_token"]
        self.refresh_token = body["refresh_token"]

    @task(3)
    def test_login(self):
        with self.client.post("/auth/login", json=self.login_data, catch_response=True) as response:
            if response.status_code == 200:
                self._keep(response.json())
            else:
                response.failure(f"login: {response.status_code} {response.text}")

    @task(2)
    def test_protected_endpoint(self):
        if self.access_token:
            headers = {"Authorization": f"Bearer {self.access_token}"}
            self.client.get("/auth/profile", headers=headers)

    @task(1)
    def test_token_refresh(self):
        if self.refresh_token:
            with self.client.post(
                "/auth/refresh", json={"refresh_token": self.refresh_token}, catch_response=True
            ) as response:
                if response.status_code == 200:
                    self._keep(response.json())
                else:
                    response.failure(f"refresh: {response.status_code} {response.text}")
