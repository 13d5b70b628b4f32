// The pages' shared reads (QubeQueries, TaskQueries): many tabs share one read of the list, and none of them is shown
// a list older than the last write, whoever made it (a page, a job, a transaction) or a run state that changed since.
using QubesWeb.Data;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;
using QubesWeb.Tests.Shared;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.QubeTests;

public sealed class QubeQueriesTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Two reads with no write and no run-state change in between. The console writes on its own for a moment after
    /// it starts (its first disk measures), so the pair is taken again until nothing moved between the two.
    /// </summary>
    private static async Task<(T First, T Second)> TwoQuietReadsAsync<T>(ConsoleHost host, Func<Task<T>> read)
    {
        var writes = host.Get<InventoryWrites>();
        var estate = host.Get<EstateMonitor>();
        (T First, T Second) pair = default;
        await Eventually.UntilAsync(async () =>
        {
            var (w, s) = (writes.Version, estate.StatesVersion);
            pair = (await read(), await read());
            return writes.Version == w && estate.StatesVersion == s;
        }, "two reads with no inventory write or run-state change between them", Timeout);
        return pair;
    }

    [Fact]
    public async Task Tabs_share_one_read_until_something_is_written_then_see_the_write()
    {
        await using var host = await ConsoleHost.StartAsync();
        var queries = host.Get<QubeQueries>();

        var (first, second) = await TwoQuietReadsAsync(host, () => queries.ListAsync());
        Assert.Same(first, second);

        // A write outside any command (as a job makes one) is seen at the next read, with no announcement needed.
        await host.Get<InventoryService>().UpdateAsync("vault", new QubeChanges(Notes: "kept offline"));
        var third = await queries.ListAsync();
        Assert.NotSame(first, third);
        Assert.Equal("kept offline", third.Single(q => q.Name == "vault").Notes);
        Assert.NotEqual("kept offline", first.Single(q => q.Name == "vault").Notes);
    }

    [Fact]
    public async Task A_write_made_in_a_transaction_is_seen_once_committed()
    {
        await using var host = await ConsoleHost.StartAsync();
        var queries = host.Get<QubeQueries>();
        var before = await queries.ListAsync();

        // A template switch checks its rules and writes in one transaction.
        var switched = await host.Get<QubeCommands>().SwitchTemplateAsync(["vault"], "fedora-42");
        Assert.True(switched.Single().Done, switched.Single().Refusal);

        var after = await queries.ListAsync();
        Assert.NotEqual("fedora-42", before.Single(q => q.Name == "vault").Template?.Name);
        Assert.Equal("fedora-42", after.Single(q => q.Name == "vault").Template?.Name);
    }

    [Fact]
    public async Task The_rows_follow_a_run_state_change_without_a_write()
    {
        await using var host = await ConsoleHost.StartAsync();
        var queries = host.Get<QubeQueries>();
        var (rows, again) = await TwoQuietReadsAsync(host, () => queries.RowsAsync());
        Assert.Same(rows, again);
        Assert.Equal(RunState.Halted, rows.Single(r => r.Name == "vault").State);

        // Started behind the console's back: only libvirt's event says so.
        var estate = host.Get<EstateMonitor>();
        host.Get<IHypervisor>().Start("vault");
        await estate.WaitForStateAsync("vault", s => s == RunState.Running, Timeout, CancellationToken.None);

        var now = await queries.RowsAsync();
        Assert.Equal(RunState.Running, now.Single(r => r.Name == "vault").State);
        Assert.Equal(RunState.Halted, rows.Single(r => r.Name == "vault").State);
    }

    [Fact]
    public async Task The_latest_tasks_include_a_task_queued_after_the_last_read()
    {
        await using var host = await ConsoleHost.StartAsync();
        var tasks = host.Get<TaskQueries>();
        var (before, again) = await TwoQuietReadsAsync(host, () => tasks.RecentAsync(8));
        Assert.Same(before, again);

        using var cts = new CancellationTokenSource(Timeout);
        var job = await host.Get<QubeCommands>().RunAsync("vault", LifecycleAction.Start, cts.Token);
        var after = await tasks.RecentAsync(8);
        Assert.Contains(after, j => j.Id == job.Id);
        Assert.DoesNotContain(before, j => j.Id == job.Id);
        await host.Get<JobEngine>().WaitAsync(job.Id, cts.Token);
    }
}
