using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace QubesWeb.Data;

/// <summary>
/// Counts the writes to the inventory: every command that is not a read, and every commit. A reader that remembers the
/// count it read at can tell, without a query, whether what it read may have changed since, so one read can serve
/// every open page until the next write. Counted where the commands run, so no write path can forget to say it
/// wrote. One per database (the console's services hold it).
/// </summary>
public sealed class InventoryWrites : IDbCommandInterceptor, IDbTransactionInterceptor
{
    private long _version;

    /// <summary>Changes after every write; equal values mean no write happened in between.</summary>
    public long Version => Volatile.Read(ref _version);

    private void Wrote(DbCommand command)
    {
        var sql = command.CommandText.AsSpan().TrimStart();
        if (sql.StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) || sql.StartsWith("PRAGMA", StringComparison.OrdinalIgnoreCase)) return;
        Interlocked.Increment(ref _version);
    }

    public DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
    {
        Wrote(command);
        return result;
    }

    public ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken ct = default)
    {
        Wrote(command);
        return ValueTask.FromResult(result);
    }

    public int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        Wrote(command);
        return result;
    }

    public ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken ct = default)
    {
        Wrote(command);
        return ValueTask.FromResult(result);
    }

    public object? ScalarExecuted(DbCommand command, CommandExecutedEventData eventData, object? result)
    {
        Wrote(command);
        return result;
    }

    public ValueTask<object?> ScalarExecutedAsync(DbCommand command, CommandExecutedEventData eventData, object? result, CancellationToken ct = default)
    {
        Wrote(command);
        return ValueTask.FromResult(result);
    }

    // A write inside a transaction is counted when it runs, before others can see it: counting the commit again
    // makes a read taken in between (which saw the old rows) out of date.
    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Interlocked.Increment(ref _version);

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken ct = default)
    {
        Interlocked.Increment(ref _version);
        return Task.CompletedTask;
    }
}
